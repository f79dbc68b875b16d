"""The servers the authority benchmark drives: OpenBao's Transit key, authority processes
(``python -m passgeni_authority serve``) and a durable PostgreSQL cluster."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _root import ROOT

from tests.support import OpenBaoServer, PostgresCluster, free_port, wait_until

__all__ = ["AuthorityProcess", "DurablePostgres", "authorities", "setup_openbao"]


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else {}


def _get_status(url: str) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def setup_openbao(bao: OpenBaoServer) -> str:
    headers = {"X-Vault-Token": bao.token}
    _post(f"{bao.url}/v1/sys/mounts/transit", {"type": "transit"}, headers)
    _post(f"{bao.url}/v1/transit/keys/bench", {"type": "ecdsa-p256"}, headers)
    # A signing input the size of a certificate's header.payload.
    signing_input = base64.b64encode(os.urandom(900)).decode()
    _post(
        f"{bao.url}/v1/transit/sign/bench",
        {"input": signing_input, "hash_algorithm": "sha2-256", "marshaling_algorithm": "jws"},
        headers,
    )
    return signing_input


class AuthorityProcess:
    """``python -m passgeni_authority serve`` as a subprocess (own process group)."""

    def __init__(
        self, state_dir: Path, *, database_url: str | None, workers: int, log: Path
    ) -> None:
        self.port = free_port()
        self.state_dir = state_dir
        self.database_url = database_url
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _db_args(self) -> list[str]:
        args = ["--state-dir", str(self.state_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    def create_key(self) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "create-key",
                *self._db_args(),
                "--user",
                "bench",
                "--rate-limit",
                "1000000000",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        key: str = json.loads(out.stdout)["api_key"]
        return key

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "passgeni_authority",
            "serve",
            *self._db_args(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                start_new_session=True,
            )
        wait_until(
            lambda: _get_status(f"{self.url}/healthz") == 200,
            60.0,
            f"authority on {self.url}",
            log_path=self.log,
            process=self.proc,
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


class DurablePostgres(PostgresCluster):
    """The test cluster, but durable: ``fsync`` and ``synchronous_commit`` on."""

    def start(self) -> None:
        began = time.monotonic()
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(self.workdir)
        argv = self._as_postgres(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-k",
                str(self.datadir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ]
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        self._spawn(argv, env=env, cwd=self.datadir)
        self._wait_ready(self.is_ready, f"PostgreSQL on 127.0.0.1:{self.port}")
        self.startup_seconds = time.monotonic() - began


@contextlib.contextmanager
def authorities(
    workdir: Path, *, count: int, database_url: str | None, workers: int
) -> Iterator[tuple[list[AuthorityProcess], str]]:
    state = workdir / "state"
    procs = [
        AuthorityProcess(
            state, database_url=database_url, workers=workers, log=workdir / f"a{i}.log"
        )
        for i in range(count)
    ]
    key = procs[0].create_key()
    try:
        for proc in procs:
            proc.start()
        yield procs, key
    finally:
        for proc in procs:
            proc.stop()
