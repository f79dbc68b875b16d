# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""Controller side of passgeni.compliance.credential: run the module, censor a returned password.

Ansible strips ``_ansible_*`` keys from what a module returns, so a module cannot mark its own
result as ``no_log``. This action plugin runs the module unchanged on the managed host and, when
the result carries a password (``return_password: true``), marks the result ``no_log``: every
displayed copy (including ``-vvv``) is censored, while the registered variable keeps the password.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        wrap_async = self._task.async_val and not self._connection.has_native_async
        module_result = self._execute_module(
            module_name=self._task.action,
            module_args=self._task.args,
            task_vars=task_vars,
            wrap_async=wrap_async,
        )
        result.update(module_result)
        if 'password' in result:
            result['_ansible_no_log'] = True
        return result
