# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Vault connection options, named as community.hashi_vault names them. Each stands for a
    # VAULT_* variable of the managed host's environment, which it overrides.
    DOCUMENTATION = r'''
options:
  auth_method:
    description:
      - How to log in to Vault for a C(vault://) O(destination) (E(VAULT_AUTH_METHOD)).
      - V(token) uses O(token), else E(VAULT_TOKEN), else C(~/.vault-token).
      - V(approle) needs O(role_id) and O(secret_id) (or E(VAULT_SECRET_ID_FILE)).
      - V(jwt) needs O(role_id) (the role name) and O(jwt) (or E(VAULT_JWT_FILE)).
      - V(kubernetes) needs O(role_id) (the role name) and uses the pod's service-account token.
      - If not set, E(VAULT_AUTH_METHOD), then V(token).
    type: str
    choices: [token, approle, jwt, kubernetes]
  mount_point:
    description:
      - The path the auth method is mounted at, when not its name (E(VAULT_AUTH_MOUNT)).
    type: str
  role_id:
    description:
      - For V(approle), the role id (E(VAULT_ROLE_ID)); for V(jwt) and V(kubernetes), the role name
        (E(VAULT_AUTH_ROLE)).
    type: str
  secret_id:
    description:
      - The AppRole secret id (E(VAULT_SECRET_ID)). Never logged and never returned.
    type: str
  jwt:
    description:
      - The JSON Web Token for the V(jwt) method (E(VAULT_JWT)). Never logged and never returned.
    type: str
  token:
    description:
      - The Vault token for the V(token) method (E(VAULT_TOKEN)). Never logged and never returned.
    type: str
  namespace:
    description:
      - The Vault namespace (E(VAULT_NAMESPACE)); recorded in the certificate's target with Vault's address.
    type: str
  ca_cert:
    description:
      - The CA certificate file that signed Vault's TLS certificate (E(VAULT_CACERT)).
    type: str
  validate_certs:
    description:
      - V(false) skips the verification of Vault's TLS certificate (E(VAULT_SKIP_VERIFY)); for a lab only.
    type: bool
notes:
  - The Vault address is E(VAULT_ADDR) of the managed host (the task's C(environment) keyword); the other
    standard variables (E(VAULT_CAPATH), E(VAULT_CLIENT_CERT), E(VAULT_TLS_SERVER_NAME)...) apply as for the
    C(passgeni) command line.
'''
