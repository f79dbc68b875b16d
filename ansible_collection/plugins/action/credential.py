# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Controller side of passgeni.compliance.credential: where the work runs, and a censored password.

Where (option ``execute_on``):

* ``host``: the module is shipped to the task's host and runs there (AnsiballZ), as any module.
  Each loop item is one module run: a new Python process that imports the passgeni library,
  logs in to the store and fetches the authority's JWKS again.
* ``controller``: the same code runs in this worker process, on the controller. The items of a
  task's ``loop`` run in one worker process, so the authority client (its HTTP session and
  JWKS) and the store (its Vault login) opened for the first item serve the next ones
  (``module_utils/reuse.py``). The store and the authority must be reachable from the
  controller, and the task's ``environment`` applies to the controller's process during the run.
* ``auto`` (default): ``controller`` when the task's host is the controller itself - connection
  ``local`` (``localhost``, or ``delegate_to: localhost``), no ``become``, no ``async`` - and the
  passgeni library is importable here; otherwise ``host``. A task on a remote host (whose Vault
  may be reachable only from there) keeps the module path: its semantics never change silently.

Either way the result is the module's: the same options, the same judge, check mode and diff.
Ansible strips ``_ansible_*`` keys from what a module returns, so a module cannot mark its own
result as ``no_log``; here, when the result carries a password (``return_password: true``), the
result is marked ``no_log``: every displayed copy (including ``-vvv``) is censored, while the
registered variable keeps the password.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import sys
from contextlib import contextmanager

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

try:
    from ansible_collections.passgeni.compliance.plugins.module_utils import passgeni as mu
    from ansible_collections.passgeni.compliance.plugins.module_utils.reuse import Connections
except ImportError:  # pragma: no cover - the collection's own module_utils are always there
    mu = None
    Connections = None

#: One per worker process: every item of the task's loop runs in it (see the docstring).
_CONNECTIONS = Connections() if Connections is not None else None


def _plain(value):
    """``value`` as the module would receive it: plain JSON types, no templating tags.

    ansible-core 2.19 hands action plugins tagged ``str`` subclasses, which the library's
    serialisers (the authority request bodies) rightly refuse; a module gets JSON.
    """
    return json.loads(json.dumps(value, default=str))


@contextmanager
def _environment(overrides):
    """The task's ``environment`` over this process's, as a module's process would see it."""
    overrides = dict((str(k), str(v)) for k, v in _plain(overrides).items())
    saved = dict((k, os.environ.get(k)) for k in overrides)
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        if self._on_controller(task_vars or {}):
            result.update(self._run_here())
            result['execute_on'] = 'controller'
        else:
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result.update(self._execute_module(
                module_name=self._task.action,
                module_args=self._task.args,
                task_vars=task_vars,
                wrap_async=wrap_async,
            ))
            result.setdefault('execute_on', 'host')
        if 'password' in result:
            result['_ansible_no_log'] = True
        return result

    def _on_controller(self, task_vars):
        chosen = self._task.args.get('execute_on') or 'auto'
        if chosen == 'host' or mu is None or not mu.HAS_PASSGENI:
            return False  # without the library here, the host's module reports what is missing
        if chosen == 'controller':
            return True
        return (self._connection.transport == 'local' and not self._task.async_val
                and not self._play_context.become and self._same_python(task_vars))

    def _same_python(self, task_vars):
        """False when the host's Python is set to another environment than the controller's.

        Discovery (``auto``...) would pick the host's own Python, which may lack the library;
        an interpreter set explicitly is honoured unless it lives beside this one (a venv's
        ``bin``), where the module would import the very library this process has.
        """
        chosen = C.config.get_config_value('INTERPRETER_PYTHON', variables=task_vars)
        chosen = self._templar.template(chosen) if chosen else chosen
        if not chosen or chosen in ('auto', 'auto_legacy', 'auto_silent', 'auto_legacy_silent'):
            return True
        here = os.path.dirname(os.path.abspath(sys.executable))
        return os.path.dirname(os.path.abspath(str(chosen))) == here

    def _run_here(self):
        spec = mu.credential_argument_spec()
        secret = set(k for k, v in spec.items() if v.get('no_log'))
        env = {}
        self._compute_environment_string(env)
        with _environment(env):
            # Inside: the options' fallbacks (PASSGENI_URL...) read the task's environment too.
            validated = ArgumentSpecValidator(spec).validate(_plain(self._task.args))
            params = validated.validated_parameters
            no_log = set(str(v) for k, v in list(self._task.args.items()) + list(params.items())
                         if k in secret and v)
            if validated.error_messages:
                out = dict(failed=True, msg=validated.error_messages[0],
                           error_code='invalid_request')
            else:
                out = self._judged(params)
        return remove_values(out, no_log)

    def _judged(self, params):
        """The module's ``main()``, run here with the worker's kept connections."""
        if not mu.HAS_PASSGENI:
            return dict(failed=True, msg=mu.missing_core_message(), error_code='missing_library')
        if params['rotate_before'] < 0:
            return dict(failed=True, msg='rotate_before must be 0 or more days',
                        error_code='invalid_request')
        try:
            result, password = mu.ensure_credential(
                params, check_mode=bool(self._task.check_mode), connections=_CONNECTIONS)
        except mu.PassgeniFailure as failure:
            # An expired token or a dropped connection must not fail the next items too.
            _CONNECTIONS.close()
            return dict(failed=True, msg=failure.message, error_code=failure.code)
        except Exception as exc:  # pylint: disable=broad-except
            # A module would end in a traceback; here one line (no_log values removed by
            # the caller) and fresh connections for the next item.
            _CONNECTIONS.close()
            return dict(failed=True, error_code='internal_error',
                        msg='%s: %s' % (type(exc).__name__, str(exc).splitlines()[0][:300]
                                        if str(exc) else ''))
        warnings = result.pop('warnings', [])
        if warnings:
            result['warnings'] = list(warnings)
        if password is not None and params['return_password']:
            result['password'] = password
        diff = result.pop('_diff')
        if self._task.diff:
            result['diff'] = diff
        return result
