# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

"""The Vault connection options of the collection, named as community.hashi_vault names them.

The options become the ``VAULT_*`` variables they stand for, laid over the managed host's
environment, and go to the ``vault://`` backend as its ``environ``: the one parser of those
variables (``vault_plugin_helper.vault.vault_config_from_environ``) reads them, exactly as
for the CLI. Nothing here logs in or holds a secret longer than the call.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

AUTH_METHODS = ['token', 'approle', 'jwt', 'kubernetes']


def vault_argument_spec():
    """The options of the ``passgeni.compliance.vault`` doc fragment."""
    return dict(
        auth_method=dict(type='str', choices=AUTH_METHODS),
        mount_point=dict(type='str'),
        role_id=dict(type='str'),
        secret_id=dict(type='str', no_log=True),
        jwt=dict(type='str', no_log=True),
        token=dict(type='str', no_log=True),
        namespace=dict(type='str'),
        ca_cert=dict(type='str'),
        validate_certs=dict(type='bool'),
    )


def vault_environ(params, environ=None):
    """The environment the ``vault://`` backend reads: the host's, with the task's options over it.

    Returns ``None`` when no Vault option is set (the backend then reads ``os.environ`` itself).
    """
    base = dict(os.environ if environ is None else environ)
    given = dict((k, params.get(k)) for k in vault_argument_spec() if params.get(k) is not None)
    if not given:
        return None
    env = base
    if given.get('auth_method'):
        env['VAULT_AUTH_METHOD'] = given['auth_method']
        if given['auth_method'] != 'token':
            # A token from the environment must not stand in for the chosen method.
            env.pop('VAULT_TOKEN', None)
    method = (env.get('VAULT_AUTH_METHOD') or 'token').lower()
    if 'mount_point' in given:
        env['VAULT_AUTH_MOUNT'] = given['mount_point']
    if 'role_id' in given:
        # community.hashi_vault: the AppRole's role id, or the role name of the jwt method.
        env['VAULT_ROLE_ID' if method == 'approle' else 'VAULT_AUTH_ROLE'] = given['role_id']
    for option, variable in (('secret_id', 'VAULT_SECRET_ID'), ('jwt', 'VAULT_JWT'),
                             ('token', 'VAULT_TOKEN'), ('namespace', 'VAULT_NAMESPACE'),
                             ('ca_cert', 'VAULT_CACERT')):
        if option in given:
            env[variable] = given[option]
    if given.get('validate_certs') is False:
        env['VAULT_SKIP_VERIFY'] = 'true'
    elif given.get('validate_certs') is True:
        env.pop('VAULT_SKIP_VERIFY', None)
    return env


def store_options(params, uri):
    """Options for ``open_store(uri, ...)``: the Vault environment for ``vault://`` URIs."""
    if getattr(uri, 'scheme', None) != 'vault':
        return {}
    environ = vault_environ(params)
    return {} if environ is None else dict(environ=environ)
