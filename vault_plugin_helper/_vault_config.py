"""Vault connection settings from the ``VAULT_*`` variables: one parser for every adapter.

:func:`vault_config_from_environ` reads a mapping (``os.environ`` by default) into a
:class:`VaultConfig`: no file is read and nothing is imported here, so the CLI, the
Ansible modules, the Terraform program/provider and the operator all parse the same
variables the same way. :func:`vault_plugin_helper.vault.client_from_environ` turns it into
a logged-in hvac client.

Variables (those of the ``vault`` CLI, plus the auth-method selection of issue #18):

* ``VAULT_ADDR`` (default ``https://127.0.0.1:8200``), ``VAULT_NAMESPACE``,
  ``VAULT_CLIENT_TIMEOUT`` (seconds, default 60);
* TLS: ``VAULT_CACERT`` / ``VAULT_CAPATH``, ``VAULT_CLIENT_CERT`` + ``VAULT_CLIENT_KEY``,
  ``VAULT_SKIP_VERIFY``, ``VAULT_TLS_SERVER_NAME`` (the name sent as SNI and checked in
  Vault's certificate);
* auth: ``VAULT_AUTH_METHOD`` = ``token`` (default: ``VAULT_TOKEN``, else the token helper file
  ``~/.vault-token``) | ``approle`` (``VAULT_ROLE_ID``; ``VAULT_SECRET_ID`` or
  ``VAULT_SECRET_ID_FILE``) | ``kubernetes`` (``VAULT_AUTH_ROLE``; the pod's service-account
  token, or ``VAULT_JWT`` / ``VAULT_JWT_FILE``) | ``jwt`` (``VAULT_AUTH_ROLE``; ``VAULT_JWT`` or
  ``VAULT_JWT_FILE``), ``VAULT_AUTH_MOUNT`` for a method mounted elsewhere than its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from passgeni_core import InvalidRequest

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_ADDR",
    "DEFAULT_TIMEOUT",
    "SERVICE_ACCOUNT_TOKEN",
    "VaultConfig",
    "vault_config_from_environ",
]

DEFAULT_ADDR = "https://127.0.0.1:8200"
DEFAULT_TIMEOUT = 60.0
AUTH_METHODS = ("token", "approle", "kubernetes", "jwt")
#: Where Kubernetes mounts a pod's service-account token.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "t", "y")


def _timeout(value: str | None) -> float:
    if not value:
        return DEFAULT_TIMEOUT
    text = value.strip().lower().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        raise InvalidRequest("VAULT_CLIENT_TIMEOUT must be a number of seconds") from None
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


@dataclass(frozen=True, kw_only=True, repr=False)
class VaultConfig:
    """How to reach and log in to one Vault. ``repr`` never shows a token, secret id or JWT."""

    addr: str = DEFAULT_ADDR
    namespace: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: ``requests``' ``verify``: True, False (``VAULT_SKIP_VERIFY``) or a CA file/directory.
    verify: bool | str = True
    #: ``(certificate, key)`` files for TLS client authentication.
    client_cert: tuple[str, str] | None = None
    tls_server_name: str | None = None
    auth_method: str = "token"
    #: The auth method's mount path (``approle``, ``kubernetes``, ``jwt`` when not given).
    auth_mount: str | None = None
    token: str | None = field(default=None, compare=False)
    #: ``~/.vault-token``, read at login when ``token`` is not given.
    token_file: str | None = None
    role_id: str | None = None
    secret_id: str | None = field(default=None, compare=False)
    secret_id_file: str | None = None
    #: The role of the ``kubernetes`` and ``jwt`` methods.
    role: str | None = None
    jwt: str | None = field(default=None, compare=False)
    jwt_file: str | None = None

    @property
    def mount(self) -> str:
        """The auth method's mount path."""
        return (self.auth_mount or self.auth_method).strip("/")

    def __repr__(self) -> str:
        return (
            f"VaultConfig(addr={self.addr!r}, namespace={self.namespace!r}, "
            f"auth_method={self.auth_method!r}, auth_mount={self.mount!r})"
        )

    __str__ = __repr__


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def vault_config_from_environ(environ: Mapping[str, str] | None = None) -> VaultConfig:
    """The :class:`VaultConfig` the ``VAULT_*`` variables of ``environ`` describe.

    ``environ`` defaults to ``os.environ``; ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    (which requests itself honours) are read from ``os.environ`` when no Vault variable
    names a CA. Nothing is read from files or the network: :func:`vault_plugin_helper.vault.
    client_from_environ` does that when it logs in.

    Raises:
        InvalidRequest: an unknown ``VAULT_AUTH_METHOD``, a method's required variable
            missing, or a malformed ``VAULT_CLIENT_TIMEOUT`` (one line, no secret).
    """
    import os

    env = os.environ if environ is None else environ
    method = (_get(env, "VAULT_AUTH_METHOD") or "token").strip().lower()
    if method not in AUTH_METHODS:
        raise InvalidRequest(
            f"VAULT_AUTH_METHOD {method[:30]!r} is not supported (use {', '.join(AUTH_METHODS)})"
        )
    verify: bool | str = True
    if _get(env, "VAULT_CAPATH"):
        verify = env["VAULT_CAPATH"]
    if _get(env, "VAULT_CACERT"):
        verify = env["VAULT_CACERT"]
    if _truthy(env.get("VAULT_SKIP_VERIFY")):
        verify = False
    if verify is True:
        # What requests' trust_env would pick on every request.
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    cert = None
    if _get(env, "VAULT_CLIENT_CERT"):
        cert = (env["VAULT_CLIENT_CERT"], _get(env, "VAULT_CLIENT_KEY") or env["VAULT_CLIENT_CERT"])
    home = _get(env, "HOME")
    token_file = str(Path(home, ".vault-token") if home else Path("~/.vault-token").expanduser())
    config = VaultConfig(
        addr=(_get(env, "VAULT_ADDR") or DEFAULT_ADDR).rstrip("/"),
        namespace=_get(env, "VAULT_NAMESPACE"),
        timeout=_timeout(env.get("VAULT_CLIENT_TIMEOUT")),
        verify=verify,
        client_cert=cert,
        tls_server_name=_get(env, "VAULT_TLS_SERVER_NAME"),
        auth_method=method,
        auth_mount=_get(env, "VAULT_AUTH_MOUNT"),
        token=_get(env, "VAULT_TOKEN"),
        token_file=token_file,
        role_id=_get(env, "VAULT_ROLE_ID"),
        secret_id=_get(env, "VAULT_SECRET_ID"),
        secret_id_file=_get(env, "VAULT_SECRET_ID_FILE"),
        role=_get(env, "VAULT_AUTH_ROLE"),
        jwt=_get(env, "VAULT_JWT"),
        jwt_file=_get(env, "VAULT_JWT_FILE"),
    )
    _check(config)
    return config


def _check(config: VaultConfig) -> None:
    method = config.auth_method
    if method == "approle":
        if not config.role_id:
            raise InvalidRequest("VAULT_AUTH_METHOD=approle needs VAULT_ROLE_ID")
        if not (config.secret_id or config.secret_id_file):
            raise InvalidRequest(
                "VAULT_AUTH_METHOD=approle needs VAULT_SECRET_ID or VAULT_SECRET_ID_FILE"
            )
    elif method in ("kubernetes", "jwt"):
        if not config.role:
            raise InvalidRequest(f"VAULT_AUTH_METHOD={method} needs VAULT_AUTH_ROLE")
        if method == "jwt" and not (config.jwt or config.jwt_file):
            raise InvalidRequest("VAULT_AUTH_METHOD=jwt needs VAULT_JWT or VAULT_JWT_FILE")
