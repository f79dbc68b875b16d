# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: password
short_description: Generate a certified password on the controller
version_added: 0.1.0
description:
  - Generates a password on the Ansible controller from the operating system's CSPRNG, to a compliance
    preset, and has a PassGeni certificate authority certify it. Only the public generation parameters and
    an HMAC commitment are sent to the authority.
  - Returns, for each term, a dictionary with the password and its certificate reference
    (C(cert_id), C(cert_url), C(token), ...). Without terms, one credential is generated.
  - A replacement for C(ansible.builtin.password) and C(community.general.random_string) that leaves
    evidence - every password comes with a signed certificate an auditor can verify.
  - Every evaluation generates a new password; use C(set_fact) or the P(passgeni.compliance.credential#module)
    module with a destination to keep one.
author:
  - PassGeni contributors (@passgeni)
extends_documentation_fragment:
  - passgeni.compliance.authority.plugins
options:
  _terms:
    description:
      - Labels recorded in the certificates, one credential per label (for example service account names).
    type: list
    elements: str
    required: false
  preset:
    description:
      - Compliance preset, for example V(soc2), V(hipaa), V(pci-dss), V(iso-27001), V(nist-800-63b),
        V(nist-800-63b-4-single-factor), V(fips-140-3).
    type: str
    required: true
  length:
    description:
      - Password length. Defaults to the preset's length.
    type: int
  exclude:
    description:
      - Characters never to use.
    type: str
    default: ''
  exclude_lookalikes:
    description:
      - Leave out easily confused characters.
    type: bool
    default: false
  special_chars:
    description:
      - The special characters to draw from, instead of the 32 ASCII specials.
    type: str
  task_no_log:
    description:
      - Confirms that the task using the lookup has C(no_log=true). Required - without it the lookup refuses
        to run (C(error_code=no_log_required)) and generates nothing.
      - Ansible tells a lookup nothing about its task, and only the task's C(no_log) censors its result -
        C(set_fact) shows the facts it sets (the password) at C(-v) and in every JSON callback. The lookup
        cannot check the task, so it asks the playbook to say so.
      - For a password that never needs this, use the P(passgeni.compliance.credential#module) module with
        O(passgeni.compliance.credential#module:return_password=true), whose result is always censored.
    type: bool
    default: false
notes:
  - The password is a secret. Do not print it; use C(no_log) on tasks that receive it (and say so with
    O(task_no_log=true)).
seealso:
  - module: passgeni.compliance.credential
'''

EXAMPLES = r'''
- name: A certified password for a template, with its certificate URL beside it
  ansible.builtin.set_fact:
    app_db: "{{ lookup('passgeni.compliance.password', 'app-db', preset='soc2', task_no_log=true) }}"
  no_log: true

- name: Render a configuration file that references the certificate
  ansible.builtin.template:
    src: app.conf.j2   # uses {{ app_db.password }} and {{ app_db.cert_url }}
    dest: /etc/app/app.conf
    mode: '0600'

- name: One password per service account, 24 characters, without quotes
  ansible.builtin.set_fact:
    accounts: "{{ query('passgeni.compliance.password', 'svc-a', 'svc-b', preset='hipaa', length=24, exclude='\"\\'', task_no_log=true) }}"
  no_log: true
'''

RETURN = r'''
_raw:
  description: One dictionary per term (one in total without terms).
  type: list
  elements: dict
  contains:
    password:
      description: The generated password (a secret).
      type: str
    cert_id:
      description: The certificate id.
      type: str
      sample: pg_8fJ2kQ0xYt3mW7aZ
    cert_url:
      description: The public certificate page.
      type: str
      sample: https://passgeni.example.com/cert/pg_8fJ2kQ0xYt3mW7aZ
    token:
      description: The certificate (ES256 JWT), verifiable offline.
      type: str
    compliance_standard:
      description:
        The standard the certificate was issued for, as the certificate names it (its claim id, e.g.
        C(SOC2); certificates issued before claim ids name the preset, e.g. C(soc2)).
      type: str
      sample: SOC2
    standards_met:
      description: Every standard the parameters meet.
      type: list
      elements: str
    entropy_bits:
      description: Exact entropy of the generator, in bits.
      type: float
    expires_at:
      description: Expiry of the certificate (ISO 8601, UTC).
      type: str
'''

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.passgeni.compliance.plugins.module_utils.passgeni import (
    HAS_PASSGENI,
    PassgeniFailure,
    missing_core_message,
    provision_password,
)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if not HAS_PASSGENI:
            raise AnsibleError(missing_core_message())
        self.set_options(var_options=variables, direct=kwargs)
        if self.get_option('task_no_log') is not True:
            # Ansible gives a lookup no view of its task; refuse before anything is generated.
            raise AnsibleLookupError(
                'passgeni.compliance.password: refusing to generate a password the task may show: '
                'Ansible does not tell a lookup whether its task has no_log, and set_fact shows the '
                'facts it sets at -v and in JSON callbacks; put no_log: true on the task and pass '
                'task_no_log=true to the lookup, or use the passgeni.compliance.credential module '
                'with return_password: true (its result is always censored) '
                '(error_code=no_log_required)'
            )
        params = dict(
            (name, self.get_option(name))
            for name in ('url', 'api_key', 'timeout', 'preset', 'length', 'exclude',
                         'exclude_lookalikes', 'special_chars')
        )
        labels = [str(term) for term in terms] if terms else [None]
        results = []
        for label in labels:
            try:
                credential = provision_password(params, label=label)
            except PassgeniFailure as failure:
                raise AnsibleLookupError('passgeni.compliance.password: %s (error_code=%s)'
                                         % (failure.message, failure.code))
            # Never template the password or the token: they are data, not Jinja.
            results.append(wrap_var(credential))
        return results
