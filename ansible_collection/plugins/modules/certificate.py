#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: certificate
short_description: Revoke a PassGeni password certificate
version_added: 0.1.0
description:
  - Revokes a certificate at the PassGeni authority that issued it, with a reason.
  - Revocation is non-destructive - the certificate record stays and its public page shows the
    status C(revoked) with the reason and time. Only the owner (or the owner's team, for team keys)
    can revoke; another tenant's certificate reads as not found.
  - Idempotent - an already revoked certificate is left as it is (C(changed=false)).
author:
  - PassGeni contributors (@passgeni)
extends_documentation_fragment:
  - passgeni.compliance.authority
attributes:
  check_mode:
    support: full
    description:
      - Reads the certificate's status and reports whether it would be revoked; revokes nothing.
  diff_mode:
    support: full
    description:
      - Shows the certificate's status and revocation reason before and after.
options:
  cert_id:
    description:
      - The certificate id (C(pg_...)).
    type: str
    required: true
  state:
    description:
      - V(revoked) revokes the certificate.
    type: str
    choices: [revoked]
    default: revoked
  reason:
    description:
      - Why the certificate is revoked (1 to 500 characters), shown on the public certificate page.
    type: str
    required: true
seealso:
  - module: passgeni.compliance.credential
  - module: passgeni.compliance.certificate_info
'''

EXAMPLES = r'''
- name: Revoke the certificate of a credential that leaked
  passgeni.compliance.certificate:
    cert_id: "{{ billing_db.cert_id }}"
    state: revoked
    reason: credential exposed in CI logs, rotated
    url: https://passgeni.example.com
    api_key: "{{ passgeni_api_key }}"
'''

RETURN = r'''
cert_id:
  description: The certificate id.
  returned: success
  type: str
  sample: pg_8fJ2kQ0xYt3mW7aZ
cert_url:
  description: The public certificate page, which now shows the revocation.
  returned: success
  type: str
  sample: https://passgeni.example.com/cert/pg_8fJ2kQ0xYt3mW7aZ
status:
  description: The certificate's status after the task (V(revoked); in check mode what it would be).
  returned: success
  type: str
  sample: revoked
revoked_at:
  description: When the certificate was revoked (ISO 8601, UTC); V(null) in check mode.
  returned: success
  type: str
  sample: '2026-11-22T03:00:00Z'
revocation_reason:
  description: The revocation reason recorded by the authority.
  returned: success
  type: str
  sample: credential exposed in CI logs, rotated
compliance_standard:
  description:
    The standard the certificate was issued for, as the certificate names it (its claim id, e.g.
    C(SOC2); certificates issued before claim ids name the preset, e.g. C(soc2)).
  returned: success
  type: str
  sample: SOC2
expires_at:
  description: Expiry time of the certificate (ISO 8601, UTC).
  returned: success
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.passgeni.compliance.plugins.module_utils.passgeni import (
    PassgeniFailure,
    authority_argument_spec,
    certificate_state,
    require_core,
)


def main():
    argument_spec = authority_argument_spec()
    argument_spec.update(
        cert_id=dict(type='str', required=True),
        state=dict(type='str', choices=['revoked'], default='revoked'),
        reason=dict(type='str', required=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_core(module)
    try:
        changed, facts, diff = certificate_state(module.params, check_mode=module.check_mode)
    except PassgeniFailure as failure:
        module.fail_json(msg=failure.message, error_code=failure.code)
    if module._diff:
        facts['diff'] = diff
    module.exit_json(changed=changed, **facts)


if __name__ == '__main__':
    main()
