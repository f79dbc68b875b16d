"""Process machinery shared by the test servers: own process group, log file, free port,
readiness polling, and a last-resort cleanup of everything started here.

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
"""

from __future__ import annotations

import atexit
import contextlib
import os
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

LOCALHOST = "127.0.0.1"

#: The repository this harness belongs to: servers and subprocesses run this tree's code.
REPO_ROOT = Path(__file__).resolve().parents[2]


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


def register_process(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_groups[proc.pid] = proc  # start_new_session=True: pgid == pid
    _install_signal_cleanup()


def unregister_process(proc: subprocess.Popen[bytes]) -> None:
    with _registry_lock:
        _live_groups.pop(proc.pid, None)


def make_temp_dir(prefix: str, base: Path | None = None) -> Path:
    path = tempfile.mkdtemp(prefix=f"passgeni-{prefix}-", dir=base)
    with _registry_lock:
        _temp_dirs.add(path)
    return Path(path)


def remove_temp_dir(path: Path) -> None:
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


def kill_group(proc: subprocess.Popen[bytes], *, sig: int, grace: float) -> None:
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
    unregister_process(proc)


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


def venv_bin(name: str) -> str | None:
    """``name`` next to this interpreter (the venv's bin), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def child_env(drop_prefixes: Sequence[str] = (), **extra: str) -> dict[str, str]:
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


class ProcessServer:
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
            self._workdir = make_temp_dir(self.name, self._temp_base)
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
            remove_temp_dir(self._workdir)
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
        register_process(proc)
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
            kill_group(proc, sig=sig, grace=grace)
        self.paused = False
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


# --------------------------------------------------------------------------------------------
# OpenBao (Vault API).
# --------------------------------------------------------------------------------------------
