#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: credential
short_description: Generate a password to a compliance preset, certify it and store it with its certificate
version_added: 0.1.0
description:
  - Generates a password on the managed host from the operating system's CSPRNG, to a compliance preset
    (SOC 2, HIPAA, PCI-DSS, ISO 27001, NIST SP 800-63B, FIPS 140-3).
  - Sends only the public generation parameters and an HMAC commitment to a PassGeni certificate authority,
    which re-validates them and signs an ES256 certificate. The password never leaves the managed host,
    except into the O(destination) store.
  - With O(destination), writes the credential into Vault KV v2, AWS Secrets Manager or a Kubernetes Secret
    and records the certificate URL and id beside it (Vault custom metadata, AWS tags, Kubernetes annotations).
    The store connection uses each ecosystem's standard configuration on the managed host, for example
    E(VAULT_ADDR) and E(VAULT_TOKEN) (or the Vault options below), the AWS SDK chain (E(AWS_DEFAULT_REGION), E(AWS_ENDPOINT_URL), credentials, profiles),
    or kubeconfig; set them with the task's C(environment) keyword.
  - Idempotent with O(state=present) and a O(destination) - an existing credential whose certificate verifies,
    is not revoked, was issued for the same O(preset), and does not expire within O(rotate_before) days is
    left alone. Without O(destination) every run generates a new credential.
  - The password is returned only with O(return_password=true). The whole task result is then censored in
    every output, including C(-vvv), as with C(no_log=true), while the registered variable holds the password.
    The password never appears in diff output.
author:
  - PassGeni contributors (@passgeni)
extends_documentation_fragment:
  - passgeni.compliance.authority
  - passgeni.compliance.vault
attributes:
  action:
    support: full
    description:
      - An action plugin of the same name runs the work on the controller or ships the module to the
        host (O(execute_on)), and censors results that hold a password.
  check_mode:
    support: full
    description:
      - In check mode the module decides as the real run does, by the same judge (it reads the destination
        and the certificate's record at the authority, and writes nothing) - a revoked or expiring certificate
        is reported as changed, a value changed by hand fails with C(store_conflict) as the real run does.
      - When the authority cannot be reached, check mode decides from the certificate references recorded
        beside the credential (id and expiry) and says that revocation and the value were not checked.
  diff_mode:
    support: full
    description:
      - The diff shows the certificate references before and after (id, URL, standard, expiry), never a secret.
options:
  preset:
    description:
      - Compliance preset the password is generated to.
      - One of V(nist-800-63b), V(nist-800-63b-4-single-factor), V(hipaa), V(pci-dss), V(soc2), V(iso-27001),
        V(fips-140-3) (C(passgeni presets) lists the presets of the installed version).
    type: str
    required: true
  length:
    description:
      - Password length. Defaults to the preset's length; shorter than the preset's minimum fails.
    type: int
  exclude:
    description:
      - Characters never to use (for example quotes a target system cannot take).
    type: str
    default: ''
  exclude_lookalikes:
    description:
      - Leave out characters that are easily confused (C(0O1lI|)).
    type: bool
    default: false
  special_chars:
    description:
      - The special characters to draw from, instead of the 32 ASCII specials.
    type: str
  destination:
    description:
      - Where to store the credential, as a store URI.
      - V(vault://MOUNT/PATH#KEY) for Vault/OpenBao KV v2, V(aws-sm://NAME#KEY) for AWS Secrets Manager,
        V(k8s://NAMESPACE/NAME#KEY) for a Kubernetes Secret.
      - If not set, the credential is only returned (use O(return_password=true)).
    type: str
  store_options:
    description:
      - Options for the O(destination)'s store backend, by the names the backend takes, for example
        V(kms_key_id) for AWS Secrets Manager (the KMS key a new secret is encrypted with; otherwise
        E(PASSGENI_AWS_KMS_KEY_ID) or the account's default key).
      - An unknown name fails the task, naming the options the backend takes.
    type: dict
  label:
    description:
      - A label recorded in the certificate (at most 200 characters), for example the service account name.
    type: str
  state:
    description:
      - V(present) makes sure a certified credential exists at O(destination), rotating it only when its
        certificate is missing, invalid, revoked, expired, for another preset, or expires within
        O(rotate_before) days.
      - A stored value that is not the certified one (changed by hand, another version written, copied
        from elsewhere) is never overwritten silently - the task fails with C(store_conflict), as
        C(passgeni provision) does, unless O(force=true) (or O(state=rotated)).
      - V(rotated) always generates, certifies and stores a new credential.
    type: str
    choices: [present, rotated]
    default: present
  force:
    description:
      - With O(state=present), rotate even if the existing credential is still valid.
    type: bool
    default: false
  rotate_before:
    description:
      - Rotate when the existing certificate expires within this many days.
    type: int
    default: 30
  return_password:
    description:
      - Return the generated password in RV(password). It is protected by C(no_log).
      - When the existing credential is kept (C(changed=false)) no password is returned.
    type: bool
    default: false
  execute_on:
    description:
      - Where the work runs - generating, asking the authority, reading and writing the store.
      - V(host) ships the module to the task's host, as any module; each loop item is a new
        process that imports the passgeni library, logs in to the store and fetches the
        authority's keys again.
      - V(controller) runs the same code in the controller's worker process. The items of one
        task's C(loop) share one authority session (and its keys) and one store client per
        store connection, so only the first item pays for them. The store and the authority
        must be reachable from the controller; the task's C(environment) applies during the run;
        the passgeni library of the controller's Python is used.
      - V(auto) is V(controller) when the task's host is the controller itself (connection
        C(local), for example C(localhost), or C(delegate_to) C(localhost)), without C(become)
        or C(async), the controller's Python has the passgeni library and the host's Python is not
        set (C(ansible_python_interpreter)) to another environment than the controller's; otherwise
        V(host).
        A task on a remote host keeps the module path, so a store reachable only from that host
        is still reached from there.
      - Either way the same judge decides each item; results, check mode, diff and censoring are
        the same. The result's RV(execute_on) says which path ran.
    type: str
    choices: [auto, controller, host]
    default: auto
notes:
  - Rotation writes the new credential first; a previous certificate is revoked (reason C(rotated)) only after
    the new value is stored, so a failure leaves the old credential current and readable.
seealso:
  - module: passgeni.compliance.certificate_info
  - module: passgeni.compliance.certificate
  - plugin: passgeni.compliance.password
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Provision a SOC 2 database password into Vault, with its certificate in the metadata
  passgeni.compliance.credential:
    preset: soc2
    destination: vault://secret/apps/billing/db#password
    label: billing-db
    url: https://passgeni.example.com
    api_key: "{{ passgeni_api_key }}"
  environment:
    VAULT_ADDR: https://vault.example.com:8200
    VAULT_TOKEN: "{{ vault_token }}"
  register: billing_db


- name: The same, logged in to Vault with AppRole (options as in community.hashi_vault)
  passgeni.compliance.credential:
    preset: soc2
    destination: vault://team/payments/apps/billing/db#password   # a nested KV mount works
    auth_method: approle
    role_id: "{{ vault_role_id }}"
    secret_id: "{{ vault_secret_id }}"
    namespace: team-a
  environment:
    VAULT_ADDR: https://vault.example.com:8200
- name: Show the certificate (no secret in it)
  ansible.builtin.debug:
    msg: "{{ billing_db.cert_url }} ({{ billing_db.standards_met | join(', ') }})"

- name: Several service accounts into AWS Secrets Manager, rotated 45 days before expiry
  passgeni.compliance.credential:
    preset: pci-dss
    destination: "aws-sm://prod/{{ item }}#password"
    label: "{{ item }}"
    rotate_before: 45
  loop: [svc-payments, svc-ledger, svc-reports]
  environment:
    AWS_DEFAULT_REGION: eu-west-1

- name: Rotate now, whatever the certificate's state
  passgeni.compliance.credential:
    preset: hipaa
    destination: k8s://clinical/ehr-db#password
    state: rotated

- name: Generate without storing, and use the password in the next task
  passgeni.compliance.credential:
    preset: iso-27001
    length: 24
    exclude: "\"'`\\"
    return_password: true
  register: admin
  no_log: true
'''

RETURN = r'''
changed:
  description: Whether a new credential was generated (and stored).
  returned: always
  type: bool
cert_id:
  description: Id of the certificate of the current credential.
  returned: success
  type: str
  sample: pg_8fJ2kQ0xYt3mW7aZ
cert_url:
  description: Public URL of the certificate page (auditors open it without an account).
  returned: success
  type: str
  sample: https://passgeni.example.com/cert/pg_8fJ2kQ0xYt3mW7aZ
compliance_standard:
  description:
    The standard the certificate was issued for, as the certificate names it (its claim id, e.g.
    C(SOC2); certificates issued before claim ids name the preset, e.g. C(soc2)).
  returned: success
  type: str
  sample: SOC2
standards_met:
  description: Every standard the generation parameters meet, as certified by the authority.
  returned: success
  type: list
  elements: str
  sample: [NIST-800-63B, HIPAA, PCI-DSS, SOC2]
entropy_bits:
  description: Exact entropy of the generator for these parameters, in bits.
  returned: success
  type: float
  sample: 129.54
expires_at:
  description: Expiry time of the certificate (ISO 8601, UTC).
  returned: success
  type: str
  sample: '2027-11-22T03:00:00Z'
destination:
  description: The store URI the credential is in, or V(null) when not stored.
  returned: always
  type: str
  sample: vault://secret/apps/billing/db#password
action:
  description:
    - What the module did or, in check mode, would do.
    - V(created) (nothing at the destination), V(rotated) (replaced an existing credential),
      V(repaired) (kept the credential, completed the certificate metadata beside it),
      V(generated) (no destination), V(none) (kept).
  returned: always
  type: str
  sample: created
reason:
  description: Why the credential was (or would be) generated, rotated or kept.
  returned: always
  type: str
  sample: certificate expires within 30 days
store_version:
  description: The store's version of the credential (Vault KV version, AWS VersionId), when stored.
  returned: when O(destination) is set and not in check mode
  type: str
  sample: '3'
previous_cert_id:
  description: Certificate id of the credential that was replaced.
  returned: when a credential was rotated
  type: str
  sample: pg_1aB2cD3eF4gH5iJ6
execute_on:
  description: Where the task ran - V(controller) (in the controller's worker process) or V(host).
  returned: always
  type: str
  sample: controller
password:
  description: The generated password. The task's displayed result is censored when it is returned.
  returned: when O(return_password=true) and a credential was generated
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.passgeni.compliance.plugins.module_utils.passgeni import (
    PassgeniFailure,
    credential_argument_spec,
    ensure_credential,
    require_core,
)


def main():
    argument_spec = credential_argument_spec()
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_core(module)
    if module.params['rotate_before'] < 0:
        module.fail_json(msg='rotate_before must be 0 or more days', error_code='invalid_request')
    try:
        result, password = ensure_credential(module.params, check_mode=module.check_mode)
    except PassgeniFailure as failure:
        module.fail_json(msg=failure.message, error_code=failure.code)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if password is not None and module.params['return_password']:
        # The collection's action plugin of the same name marks such a result no_log: the
        # registered variable holds the password, every displayed copy is censored.
        result['password'] = password
    if module._diff:
        result['diff'] = result.pop('_diff')
    else:
        result.pop('_diff')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
