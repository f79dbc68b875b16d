"""A throwaway PostgreSQL cluster (trust auth, user ``postgres``)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.process import (
    LOCALHOST,
    ProcessServer,
    ServerError,
    child_env,
    free_port,
)


def ram_temp_base(min_free: int = 1 << 30) -> Path | None:
    """``/dev/shm`` if it is a writable tmpfs with ``min_free`` bytes free, else None.

    initdb on a RAM disk takes ~0.5 s instead of ~1.5 s on this image's disk.
    """
    shm = Path("/dev/shm")
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < min_free:
        return None
    return shm


def find_postgres_bindir(preferred_major: int = 15) -> Path:
    """``/usr/lib/postgresql/15/bin``, else the newest ``/usr/lib/postgresql/*/bin``."""
    preferred = Path(f"/usr/lib/postgresql/{preferred_major}/bin")
    if (preferred / "postgres").is_file():
        return preferred

    def major(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else -1

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    raise ServerError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")


class PostgresCluster(ProcessServer):
    """A throwaway PostgreSQL cluster on ``127.0.0.1:port``, trust auth, superuser ``postgres``.

    ``initdb`` runs on first ``start()`` into ``workdir/data`` (``workdir`` is
    ``chmod 755`` so user ``postgres`` can reach it; it is on ``/dev/shm`` when
    that tmpfs has 1 GiB free, see :func:`ram_temp_base`, else in ``$TMPDIR``). When running as root,
    ``initdb`` and ``postgres`` run as user ``postgres`` through ``runuser``
    (initdb refuses root). The postmaster runs in the foreground as a child of
    this process (in its own process group), ``fsync=off``; the Unix socket is
    in the data dir. Data survives ``stop()``/``start()``; ``close()`` deletes it.

    Attributes: ``port``, ``bindir``, ``datadir``; ``url(dbname)`` gives a
    SQLAlchemy URL, ``dsn(dbname)`` a libpq/psycopg conninfo.
    """

    name = "postgres"

    def __init__(
        self,
        *,
        port: int | None = None,
        bindir: Path | None = None,
        temp_base: Path | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(startup_timeout=startup_timeout)
        self.port = port if port is not None else free_port()
        self.bindir = bindir if bindir is not None else find_postgres_bindir()
        self._temp_base = temp_base if temp_base is not None else ram_temp_base()
        self.startup_seconds: float | None = None

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://postgres@127.0.0.1:PORT/DBNAME``."""
        return f"postgresql+psycopg://postgres@{LOCALHOST}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq conninfo string for psycopg/psql."""
        return f"host={LOCALHOST} port={self.port} user=postgres dbname={dbname}"

    def _as_postgres(self, argv: Sequence[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def start(self) -> None:
        began = time.monotonic()
        workdir = self.workdir
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(workdir)
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
                f"listen_addresses={LOCALHOST}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        )
        env = child_env(("PG",), LC_ALL="C.UTF-8")
        self._spawn(argv, env=env, cwd=self.datadir)
        self._wait_ready(self.is_ready, f"PostgreSQL on {LOCALHOST}:{self.port}")
        self.startup_seconds = time.monotonic() - began

    def _initdb(self, workdir: Path) -> None:
        os.chmod(workdir, 0o755)  # noqa: S103 - user postgres must traverse it
        self.datadir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.datadir, user="postgres", group="postgres")
        argv = self._as_postgres(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        with self.log_path.open("ab") as log:
            log.write(f"### $ {' '.join(argv)}\n".encode())
            log.flush()
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(("PG",), LC_ALL="C.UTF-8"),
                cwd=workdir,
                timeout=self.startup_timeout,
                check=False,
            )
        if result.returncode != 0:
            raise ServerError(f"initdb failed ({result.returncode}):\n{self.log_tail()}")

    def is_ready(self) -> bool:
        """True when ``postmaster.pid`` says ``ready`` (what ``pg_ctl -w`` checks)."""
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # Line 8 (PM_STATUS) is "ready" once connections are accepted.
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def stop(self) -> None:
        """Immediate shutdown (``pg_ctl stop -m immediate``), then sweep the process group."""
        if self.paused:
            self.resume()  # else pg_ctl would wait for a frozen postmaster
        if self.running:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(
                    self._as_postgres(
                        [
                            str(self.bindir / "pg_ctl"),
                            "stop",
                            "-D",
                            str(self.datadir),
                            "-m",
                            "immediate",
                            "-w",
                            "-t",
                            "10",
                        ]
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=15,
                    check=False,
                )
        # SIGQUIT is postgres' immediate shutdown too, should pg_ctl have failed.
        self._terminate(signal.SIGQUIT, grace=5.0)

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` (psycopg imported lazily); returns ``url(name)``."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)
