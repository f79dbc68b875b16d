# -*- coding: utf-8 -*-

# Copyright (c) PassGeni contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Authority connection options shared by every module of the collection.
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the PassGeni certificate authority, for example C(https://passgeni.example.com).
      - The public PassGeni API and a self-hosted C(passgeni authority serve) speak the same API.
      - If not set, the environment variable E(PASSGENI_URL) is used, then the C(url) key of the
        PassGeni config file (E(PASSGENI_CONFIG) or C(~/.config/passgeni/config.toml)).
      - If no URL is configured anywhere, the task fails (C(error_code=authority_not_configured)) before
        anything is certified or stored; there is no default authority.
      - C(embedded) runs a throwaway authority in-process on the host that runs the module (requires
        C(passgeni[authority]) there; state in a local SQLite database). Its certificates carry an
        C(embedded:) issuer and are no evidence for an auditor (for a lab, never for production).
    type: str
  api_key:
    description:
      - API key sent to the authority as a Bearer token.
      - If not set, the environment variable E(PASSGENI_API_KEY) is used, then the config file.
      - Never logged and never returned.
    type: str
  timeout:
    description:
      - Timeout in seconds for each request to the authority.
      - If not set, the environment variable E(PASSGENI_TIMEOUT) is used, then the config file,
        then 10 seconds.
    type: float
requirements:
  - The C(passgeni) Python library (C(pip install passgeni)) on the host that executes the module.
    Store destinations need its extras there too (C(passgeni[vault]), C(passgeni[aws]), C(passgeni[k8s])).
'''

    # The same options for controller-side plugins (lookups), with their configuration sources.
    PLUGINS = r'''
options:
  url:
    description:
      - Base URL of the PassGeni certificate authority, for example C(https://passgeni.example.com).
      - If no URL is configured anywhere (option, environment, PassGeni config file), the lookup fails
        (C(authority_not_configured)); there is no default authority.
      - C(embedded) runs a throwaway authority in-process on the controller (requires
        C(passgeni[authority])); its certificates carry an C(embedded:) issuer and are no evidence for
        an auditor.
    type: str
    env:
      - name: PASSGENI_URL
    vars:
      - name: passgeni_url
  api_key:
    description:
      - API key sent to the authority as a Bearer token. Never logged and never returned.
    type: str
    env:
      - name: PASSGENI_API_KEY
    vars:
      - name: passgeni_api_key
  timeout:
    description:
      - Timeout in seconds for each request to the authority (default 10 seconds).
    type: float
    env:
      - name: PASSGENI_TIMEOUT
    vars:
      - name: passgeni_timeout
requirements:
  - The C(passgeni) Python library (C(pip install passgeni)) on the controller.
'''
