"""``moto_server`` (AWS APIs on one port)."""

from __future__ import annotations

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


class MotoServer(ProcessServer):
    """``moto_server`` (AWS API emulator, all services on one port) on ``127.0.0.1:port``.

    Attributes: ``url``, ``port``, ``region`` (``us-east-1``). Data is in memory:
    lost on stop(); :meth:`reset` empties it without a restart.
    """

    name = "moto"

    def __init__(
        self,
        *,
        port: int | None = None,
        region: str = "us-east-1",
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.port = port if port is not None else free_port()
        self.region = region
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self) -> None:
        began = time.monotonic()
        binary = venv_bin("moto_server")
        if binary is None:
            raise ServerError("moto_server not found: pip install 'moto[server]'")
        env = child_env(("AWS_",), PYTHONUNBUFFERED="1")
        self._spawn([binary, "-H", LOCALHOST, "-p", str(self.port)], env=env)
        self._wait_ready(self.is_ready, f"moto at {self.url}/moto-api/data.json")
        self.startup_seconds = time.monotonic() - began

    def is_ready(self) -> bool:
        return http_status(f"{self.url}/moto-api/data.json", timeout=1.0) == 200

    def reset(self) -> None:
        """Forget all emulated AWS state (``POST /moto-api/reset``)."""
        status = http_status(f"{self.url}/moto-api/reset", method="POST", data=b"")
        if status != 200:
            raise ServerError(f"moto reset returned HTTP {status}")

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` / ``Session.client(...)``."""
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }

    def boto3_client(self, service: str = "secretsmanager") -> Any:
        """A boto3 client for ``service`` pointed at this server (dummy credentials)."""
        import boto3

        return boto3.session.Session().client(service, **self.client_kwargs())


# --------------------------------------------------------------------------------------------
# PostgreSQL.
# --------------------------------------------------------------------------------------------
