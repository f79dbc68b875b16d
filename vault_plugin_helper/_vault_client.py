"""An hvac client for Vault, configured and logged in from the environment as the ``vault`` CLI is.

The variables are parsed by :func:`vault_plugin_helper._vault_config.vault_config_from_environ`
(listed there); this module makes the session and the client and logs in with hvac's
public auth APIs. hvac and requests are imported when a client is made, not with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passgeni_core import InvalidRequest, StoreError, StoreUnavailable

from ._common import scrub
from ._vault_config import (
    DEFAULT_ADDR,
    DEFAULT_TIMEOUT,
    SERVICE_ACCOUNT_TOKEN,
    VaultConfig,
    vault_config_from_environ,
)

if TYPE_CHECKING:
    import hvac
    import requests

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_TIMEOUT",
    "client_from_environ",
    "transport_error",
    "vault_client",
]


def transport_error(exc: Exception, addr: str, what: str) -> StoreError:
    """The StoreError for a requests exception raised while talking to Vault at ``addr``."""
    import requests

    if isinstance(exc, requests.exceptions.Timeout):
        return StoreUnavailable(f"Vault at {addr}: no answer to {what} in time")
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "doesn't match" in text:
            reason = "certificate verify failed"
        else:
            reason = "TLS handshake failed"
        return StoreUnavailable(
            f"{reason} for {addr} ({what}): set VAULT_CACERT or VAULT_CAPATH to the "
            "CA that signed Vault's certificate, VAULT_TLS_SERVER_NAME to the name it "
            "carries (VAULT_SKIP_VERIFY only for a lab)"
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return StoreUnavailable(f"cannot reach Vault at {addr} ({what})")
    return StoreError(f"Vault at {addr}: {what} failed ({type(exc).__name__})")


def _session_for(addr: str, config: VaultConfig) -> requests.Session:
    """A session for one Vault address, with the process environment read once.

    With ``trust_env`` on, requests re-reads the environment on every request
    (proxies with ``NO_PROXY`` matching, ``~/.netrc``, CA bundle variables),
    which costs more CPU than a request to a nearby Vault. Every request goes
    to ``addr``, so the proxies are resolved for it now, the same way
    (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``); the CA bundle variables
    are in ``config.verify``. A ``.netrc`` entry is not used (Vault
    authenticates with the token header).
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(addr))
    # On the session itself: hvac takes a given session's ``verify`` and ``cert`` over its own
    # arguments (a fresh session's ``verify=True`` replaced VAULT_CACERT; issue #18).
    session.verify = config.verify
    session.cert = config.client_cert
    if config.tls_server_name:
        session.mount("https://", _server_name_adapter(config.tls_server_name))
    return session


def _server_name_adapter(name: str) -> requests.adapters.HTTPAdapter:
    """An HTTPS adapter sending ``name`` as SNI and checking Vault's certificate against it."""
    from requests.adapters import HTTPAdapter

    class ServerNameAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server_hostname"] = name
            super().init_poolmanager(*args, **kwargs)

    return ServerNameAdapter()


def _read_secret_file(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidRequest(
            f"{what} {path[:200]}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    if not text:
        raise InvalidRequest(f"{what} {path[:200]} is empty")
    return text


def _token_from_helper(config: VaultConfig) -> str | None:
    if not config.token_file:
        return None
    try:
        return Path(config.token_file).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _login(client: hvac.Client, config: VaultConfig, addr: str) -> None:
    """Log ``client`` in with the configured auth method (hvac's public auth APIs)."""
    import hvac.exceptions
    import requests

    method, mount = config.auth_method, config.mount
    secrets: list[str | None] = []
    where = f"{addr}/v1/auth/{mount}/login"
    try:
        if method == "approle":
            secret_id = config.secret_id or _read_secret_file(
                config.secret_id_file or "", "VAULT_SECRET_ID_FILE"
            )
            secrets = [secret_id, config.role_id]
            client.auth.approle.login(config.role_id, secret_id, mount_point=mount)
        elif method == "jwt":
            jwt = config.jwt or _read_secret_file(config.jwt_file or "", "VAULT_JWT_FILE")
            secrets = [jwt]
            client.auth.jwt.jwt_login(config.role, jwt, path=mount)
        else:  # kubernetes
            jwt = config.jwt or _read_secret_file(
                config.jwt_file or SERVICE_ACCOUNT_TOKEN, "the service-account token"
            )
            secrets = [jwt]
            client.auth.kubernetes.login(config.role, jwt, mount_point=mount)
    except requests.exceptions.RequestException as exc:
        raise transport_error(exc, addr, f"{method} login") from None
    except hvac.exceptions.VaultError as exc:
        errors = "; ".join(str(e) for e in (exc.errors or [])) or type(exc).__name__
        reason = scrub(errors, secrets, limit=200)
        cls = (
            StoreUnavailable
            if isinstance(exc, hvac.exceptions.VaultDown | hvac.exceptions.InternalServerError)
            else StoreError
        )
        raise cls(
            f"Vault {method} login failed at {where} (role {_role(config)!r}): {reason}"
        ) from None
    if not client.token:
        raise StoreError(f"Vault {method} login at {where} returned no token")


def _role(config: VaultConfig) -> str:
    text = (config.role_id if config.auth_method == "approle" else config.role) or ""
    return text[:100]


def vault_client(config: VaultConfig, **overrides: Any) -> hvac.Client:
    """An hvac client for ``config``, logged in with its auth method.

    ``overrides`` go to ``hvac.Client`` (``url``, ``token``, ``namespace``, ``timeout``...);
    a ``token`` given here is used as is, whatever the auth method.

    Raises:
        InvalidRequest: an unreadable secret-id or JWT file.
        StoreError: no token for the ``token`` method; the login was refused (the message names the method, the mount and
            the role, never a secret); StoreUnavailable when Vault cannot be reached.
    """
    addr = overrides.pop("url", None) or config.addr
    token = overrides.pop("token", None)
    method = "token" if token else config.auth_method
    if method == "token":
        token = token or config.token or _token_from_helper(config)
        if not token:
            raise StoreError(
                f"no Vault token for {addr}: set VAULT_TOKEN or log in with `vault login` "
                "(~/.vault-token), choose another VAULT_AUTH_METHOD, or pass an "
                "authenticated hvac client"
            )
    timeout = overrides.pop("timeout", None) or config.timeout
    namespace = overrides.pop("namespace", None) or config.namespace
    session = _session_for(addr, config)
    import hvac

    client = hvac.Client(
        url=addr,
        token=token,
        namespace=namespace,
        verify=config.verify,
        cert=config.client_cert,
        timeout=timeout,
        session=session,
        **overrides,
    )
    if method != "token":
        _login(client, config, addr)
    return client


def client_from_environ(environ: Mapping[str, str] | None = None, **overrides: Any) -> hvac.Client:
    """An hvac client configured and logged in from the usual ``VAULT_*`` variables.

    The same as ``vault_client(vault_config_from_environ(environ), **overrides)``.
    """
    return vault_client(vault_config_from_environ(environ), **overrides)
