"""Authority processes: ``python -m passgeni_authority serve`` in its own process group,
on SQLite or on one PostgreSQL database shared by two processes; killable and restartable
on the same port (the load and crash run in :mod:`tests.support.load`); and
:func:`machines`, instances with a state directory each, as on separate machines."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.postgres import PostgresCluster
from tests.support.process import REPO_ROOT, free_port, http_status, wait_until

ROOT = REPO_ROOT


def _session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


class AuthorityProcess:
    """``python -m passgeni_authority serve`` in its own process group."""

    def __init__(
        self, *, port: int, state_dir: Path, public_url: str, env: dict[str, str], log: Path
    ) -> None:
        self.port = port
        self.state_dir = state_dir
        self.public_url = public_url
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "passgeni_authority",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--public-url",
            self.public_url,
            "--log-level",
            "warning",
        ]

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1
        proc = self.proc
        wait_until(
            lambda: http_status(f"{self.url}/healthz", timeout=1.0) == 200,
            60.0,
            f"authority on {self.url}",
            log_path=self.log,
            process=proc,
        )

    def kill9(self) -> None:
        """``kill -9`` the process group: no shutdown handler runs."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
            self.proc = None

    def rss_kib(self) -> int | None:
        if self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None


@dataclass
class Deployment:
    backend: str
    database_url: str
    processes: list[AuthorityProcess]
    api_key: str
    user: str
    workdir: Path

    @property
    def issuer(self) -> str:
        return self.processes[0].public_url


@contextlib.contextmanager
def deployment(
    backend: str, workdir: Path, *, postgres: PostgresCluster | None = None
) -> Iterator[Deployment]:
    """Start the authority processes (and PostgreSQL when not given one)."""
    state_dir = workdir / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    env["PYTHONUNBUFFERED"] = "1"
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            database_url = f"sqlite:///{state_dir / 'authority.db'}"
            count = 1
        elif backend == "postgres":
            if postgres is None:
                postgres = stack.enter_context(PostgresCluster())
            database_url = postgres.create_database(f"load_{uuid.uuid4().hex[:10]}")
            env["PASSGENI_DATABASE_URL"] = database_url
            count = 2
        else:
            raise ValueError(f"unknown backend {backend!r}")
        ports = [free_port() for _ in range(count)]
        public_url = f"http://127.0.0.1:{ports[0]}"
        user = f"load-{uuid.uuid4().hex[:8]}"
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "create-key",
                "--state-dir",
                str(state_dir),
                "--user",
                user,
                "--rate-limit",
                "1000000000",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=True,
        )
        api_key = json.loads(created.stdout)["api_key"]
        procs = [
            AuthorityProcess(
                port=port,
                state_dir=state_dir,
                public_url=public_url,
                env=env,
                log=workdir / f"authority-{port}.log",
            )
            for port in ports
        ]
        for proc in procs:
            stack.callback(proc.stop)
        threads = [threading.Thread(target=p.start) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in procs:
            if p.proc is None or p.proc.poll() is not None:
                raise RuntimeError(f"authority on port {p.port} did not start:\n{p.log}")
        yield Deployment(
            backend=backend,
            database_url=database_url,
            processes=procs,
            api_key=api_key,
            user=user,
            workdir=workdir,
        )


@dataclass
class Machines:
    """Authority instances as on separate machines: one PostgreSQL database, one
    public URL (the load balancer's), and a state directory of each instance's own."""

    database_url: str
    public_url: str
    env: dict[str, str]
    processes: list[AuthorityProcess]
    #: The operator's machine: where ``passgeni authority`` admin commands run.
    admin_state: Path
    #: Their environment (the instances' with ``admin_env`` over it).
    admin_env: dict[str, str]

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.processes]

    def cli(
        self, *args: str, state_dir: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``python -m passgeni_authority ARGS --state-dir DIR`` (the admin machine's
        by default) with this deployment's environment."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                *args,
                "--state-dir",
                str(state_dir or self.admin_state),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.admin_env,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"passgeni authority {args[0]} failed:\n{result.stderr}")
        return result


@contextlib.contextmanager
def machines(
    workdir: Path,
    database_url: str,
    *,
    public_url: str,
    count: int = 2,
    shared_keys: Path | None = None,
    env: dict[str, str] | None = None,
    admin_env: dict[str, str] | None = None,
) -> Iterator[Machines]:
    """``count`` instances of ``passgeni authority serve`` on one database, each with a
    state directory of its own (``workdir/machine-N``), started at once after the
    database was migrated from the admin machine (``workdir/admin``).

    ``shared_keys``: the local-file signer's keys live in this one directory, which
    every machine (the admin's too) sees as ``<state-dir>/keys`` (a shared volume);
    ``None``: nothing is shared but the database (a Transit signer in ``env``).
    ``admin_env`` is added to ``env`` for the admin commands (a token of more rights).
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    base |= {"PYTHONUNBUFFERED": "1", "PASSGENI_DATABASE_URL": database_url, **(env or {})}
    states = [workdir / "admin", *(workdir / f"machine-{n}" for n in range(count))]
    for state in states:
        state.mkdir(parents=True)
        if shared_keys is not None:
            shared_keys.mkdir(mode=0o700, exist_ok=True)
            (state / "keys").symlink_to(shared_keys, target_is_directory=True)
    deployment = Machines(
        database_url=database_url,
        public_url=public_url,
        env=base,
        processes=[
            AuthorityProcess(
                port=free_port(),
                state_dir=state,
                public_url=public_url,
                env=base,
                log=workdir / f"{state.name}.log",
            )
            for state in states[1:]
        ],
        admin_state=states[0],
        admin_env={**base, **(admin_env or {})},
    )
    # Migrate once (and make the first signing key) before the instances start.
    deployment.cli("list-keys")
    failed: list[BaseException] = []

    def start(process: AuthorityProcess) -> None:
        try:
            process.start()
        except BaseException as exc:  # reported below, from the test's thread
            failed.append(exc)

    try:
        threads = [threading.Thread(target=start, args=(p,)) for p in deployment.processes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failed:
            raise failed[0]
        yield deployment
    finally:
        for p in deployment.processes:
            p.stop()
