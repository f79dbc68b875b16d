"""An hvac client for Vault, configured from the environment as the ``vault`` CLI is.

The variables are listed in :mod:`vault_plugin_helper.vault`. hvac and requests
are imported when a client is made, not with this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passgeni_core import StoreError

if TYPE_CHECKING:
    import hvac
    import requests

__all__ = ["DEFAULT_ADDR", "DEFAULT_TIMEOUT", "client_from_environ"]

DEFAULT_ADDR = "https://127.0.0.1:8200"
DEFAULT_TIMEOUT = 60.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "t", "y")


def _timeout(value: str | None) -> float:
    if not value:
        return DEFAULT_TIMEOUT
    text = value.strip().lower().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        raise StoreError("VAULT_CLIENT_TIMEOUT must be a number of seconds") from None
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def _session_for(addr: str) -> requests.Session:
    """A session for one Vault address, with the process environment read once.

    With ``trust_env`` on, requests re-reads the environment on every request
    (proxies with ``NO_PROXY`` matching, ``~/.netrc``, CA bundle variables),
    which costs more CPU than a request to a nearby Vault. Every request goes
    to ``addr``, so the proxies are resolved for it now, the same way
    (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``); the CA bundle
    variables are applied by :func:`client_from_environ`. A ``.netrc`` entry
    is not used (Vault authenticates with the token header).
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(addr))
    return session


def client_from_environ(environ: Mapping[str, str] | None = None, **overrides: Any) -> hvac.Client:
    """An hvac client configured from the usual ``VAULT_*`` variables.

    Raises:
        StoreError: no token (neither ``VAULT_TOKEN`` nor ``~/.vault-token``).
    """
    env = os.environ if environ is None else environ
    addr = overrides.pop("url", None) or env.get("VAULT_ADDR") or DEFAULT_ADDR
    token = overrides.pop("token", None) or env.get("VAULT_TOKEN")
    if not token:
        home = env.get("HOME")
        helper = Path(home, ".vault-token") if home else Path("~/.vault-token").expanduser()
        try:
            token = helper.read_text(encoding="utf-8").strip() or None
        except OSError:
            token = None
    if not token:
        raise StoreError(
            f"no Vault token for {addr}: set VAULT_TOKEN or log in with `vault login` "
            "(~/.vault-token), or pass an authenticated hvac client"
        )
    verify: bool | str = True
    if env.get("VAULT_CAPATH"):
        verify = env["VAULT_CAPATH"]
    if env.get("VAULT_CACERT"):
        verify = env["VAULT_CACERT"]
    if _truthy(env.get("VAULT_SKIP_VERIFY")):
        verify = False
    cert = None
    if env.get("VAULT_CLIENT_CERT"):
        cert = (env["VAULT_CLIENT_CERT"], env.get("VAULT_CLIENT_KEY") or env["VAULT_CLIENT_CERT"])
    timeout = overrides.pop("timeout", None) or _timeout(env.get("VAULT_CLIENT_TIMEOUT"))
    session = _session_for(addr)
    if verify is True:
        # What requests' trust_env would pick on every request.
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    # On the session itself: hvac takes a given session's ``verify`` and ``cert`` over its own
    # arguments (a fresh session's ``verify=True`` replaced VAULT_CACERT; issue #18).
    session.verify = verify
    session.cert = cert
    import hvac

    return hvac.Client(
        url=addr,
        token=token,
        namespace=overrides.pop("namespace", None) or env.get("VAULT_NAMESPACE") or None,
        verify=verify,
        cert=cert,
        timeout=timeout,
        session=session,
        **overrides,
    )
