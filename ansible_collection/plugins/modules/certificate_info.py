#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: certificate_info
short_description: Verify a PassGeni password certificate and return its claims and status
version_added: 0.1.0
description:
  - Verifies a PassGeni certificate given by its token (the ES256 JWT), its public URL or its id.
  - The signature is checked offline against the authority's published JWKS (C(/.well-known/jwks.json)),
    together with the issuer and the certificate version; then the authority is asked for the current
    status (valid, expired or revoked, with reason and time).
  - Fails clearly (with an C(error_code)) when the certificate does not verify - malformed token, wrong
    algorithm, unknown key, bad signature, wrong issuer, unknown id. An expired or revoked certificate is
    reported in RV(status) with RV(valid=false), or fails with O(require_valid=true).
author:
  - PassGeni contributors (@passgeni)
extends_documentation_fragment:
  - passgeni.compliance.authority
attributes:
  check_mode:
    support: full
    description:
      - The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
    description:
      - Nothing changes, so there is no diff.
options:
  token:
    description:
      - The certificate token (compact JWS, C(eyJ...)). Verified against the JWKS of the authority
        configured with O(url) (or E(PASSGENI_URL)); its issuer must be that authority.
      - Exactly one of O(token), O(cert_url) and O(cert_id) is required.
    type: str
  cert_url:
    description:
      - The certificate's public URL, C(https://AUTHORITY/cert/ID). The authority named by the URL is asked
        for the certificate and its JWKS (no API key needed), and must be the certificate's issuer.
    type: str
  cert_id:
    description:
      - The certificate id (C(pg_...)), looked up at the authority configured with O(url).
    type: str
  online:
    description:
      - With O(token), also ask the authority for the current status (revocation).
      - V(false) verifies the token offline against the JWKS only; RV(status) is then V(valid) or V(expired).
      - O(cert_url) and O(cert_id) always ask the authority.
    type: bool
    default: true
  require_valid:
    description:
      - Fail (C(error_code=certificate_revoked) or C(certificate_expired)) when the certificate verifies but
        is revoked or expired, instead of reporting it.
    type: bool
    default: false
seealso:
  - module: passgeni.compliance.credential
  - module: passgeni.compliance.certificate
'''

EXAMPLES = r'''
- name: Check the certificate of a credential provisioned earlier
  passgeni.compliance.certificate_info:
    cert_url: "{{ billing_db.cert_url }}"
  register: cert

- name: Report it
  ansible.builtin.debug:
    msg: "{{ cert.cert_id }} is {{ cert.status }}; meets {{ cert.standards_met | join(', ') }}"

- name: Verify a token offline against the configured authority's JWKS
  passgeni.compliance.certificate_info:
    token: "{{ lookup('ansible.builtin.file', 'certificate.jwt') }}"
    online: false

- name: Fail the play unless the certificate is valid and unrevoked
  passgeni.compliance.certificate_info:
    cert_id: pg_8fJ2kQ0xYt3mW7aZ
    url: https://passgeni.example.com
    require_valid: true
'''

RETURN = r'''
valid:
  description: V(true) when the signature verifies and the certificate is neither expired nor revoked.
  returned: success
  type: bool
  sample: true
status:
  description: V(valid), V(expired) or V(revoked).
  returned: success
  type: str
  sample: valid
checked_online:
  description: Whether the authority was asked for the revocation status.
  returned: success
  type: bool
  sample: true
cert_id:
  description: The certificate id (the token's C(jti)).
  returned: success
  type: str
  sample: pg_8fJ2kQ0xYt3mW7aZ
cert_url:
  description: The public certificate page, when the authority was asked.
  returned: success
  type: str
  sample: https://passgeni.example.com/cert/pg_8fJ2kQ0xYt3mW7aZ
kid:
  description: Id of the authority key that signed the certificate.
  returned: success
  type: str
issuer:
  description: The issuing authority (the token's C(iss)).
  returned: success
  type: str
  sample: https://passgeni.example.com
compliance_standard:
  description:
    The standard the certificate was issued for, as the certificate names it (its claim id, e.g.
    C(SOC2); certificates issued before claim ids name the preset, e.g. C(soc2)).
  returned: success
  type: str
  sample: SOC2
standards_met:
  description: Every standard the certified parameters meet.
  returned: success
  type: list
  elements: str
  sample: [NIST-800-63B, HIPAA, PCI-DSS, SOC2]
entropy_bits:
  description: Exact entropy of the generator, in bits.
  returned: success
  type: float
  sample: 129.54
issued_at:
  description: Issuance time (ISO 8601, UTC).
  returned: success
  type: str
expires_at:
  description: Expiry time (ISO 8601, UTC).
  returned: success
  type: str
revoked_at:
  description: Revocation time, or V(null).
  returned: success
  type: str
revocation_reason:
  description: The reason given when the certificate was revoked, or V(null).
  returned: success
  type: str
label:
  description: The label recorded in the certificate, or V(null).
  returned: success
  type: str
target:
  description: Where the certified credential was stored (system, path, version), or V(null).
  returned: success
  type: dict
claims:
  description: All the certificate's signed claims (the JWT payload). Contains no secret.
  returned: success
  type: dict
token:
  description: The certificate token (a public, signed document).
  returned: success
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.passgeni.compliance.plugins.module_utils.passgeni import (
    PassgeniFailure,
    authority_argument_spec,
    require_core,
    verify_reference,
)


def main():
    argument_spec = authority_argument_spec()
    argument_spec.update(
        token=dict(type='str', no_log=False),  # a certificate is a public, signed document
        cert_url=dict(type='str'),
        cert_id=dict(type='str'),
        online=dict(type='bool', default=True),
        require_valid=dict(type='bool', default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[('token', 'cert_url', 'cert_id')],
        required_one_of=[('token', 'cert_url', 'cert_id')],
        supports_check_mode=True,
    )
    require_core(module)
    try:
        result = verify_reference(module.params)
    except PassgeniFailure as failure:
        module.fail_json(msg=failure.message, error_code=failure.code)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
