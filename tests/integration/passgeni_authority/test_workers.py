"""``serve --workers N`` as a real program: a supervisor and N spawned worker
processes, each with its own ``SO_REUSEPORT`` listening socket.

What is checked is what the kernel and the process table say (``/proc``):
one listening socket per worker (not one shared socket), connections spread
over both workers, a killed worker replaced, every process gone after
``SIGTERM``, and a clear one-line failure when the port is taken.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from passgeni_authority._workers import STARTUP_SECONDS
from tests.support import LOCALHOST, REPO_ROOT, free_port, http_status, log_tail, wait_until

REPO = REPO_ROOT

_LISTEN, _ESTABLISHED = "0A", "01"


def _serve_argv(state_dir: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "passgeni_authority",
        "serve",
        "--state-dir",
        str(state_dir),
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace")


def _processes() -> Iterator[tuple[int, int, int]]:
    """``(pid, parent pid, process group)`` of every live (non-zombie) process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after ")".
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            yield int(entry), int(fields[1]), int(fields[2])


def _children(pid: int) -> list[int]:
    return [child for child, parent, _group in _processes() if parent == pid]


def _group(pgid: int) -> list[int]:
    return [pid for pid, _parent, group in _processes() if group == pgid]


def _workers(supervisor: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    return {
        pid
        for pid in _children(supervisor)
        if "spawn_main" in (cmd := _cmdline(pid)) and "resource_tracker" not in cmd
    }


def _tcp_inodes(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets whose local port is ``port``, in ``state``."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == state and fields[9] != "0":
                    inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def _owned(pids: set[int], port: int, state: str) -> dict[int, set[int]]:
    """``{pid: inodes}`` of the sockets on ``port`` in ``state`` each process holds."""
    sockets = _tcp_inodes(port, state)
    return {pid: _socket_inodes(pid) & sockets for pid in pids}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@dataclass
class Supervisor:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    #: When the first two workers were seen (they started no later than this).
    workers_seen_at: float

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def healthy(self) -> bool:
        return http_status(f"{self.url}/healthz", timeout=2.0) == 200

    def workers(self) -> set[int]:
        return _workers(self.proc.pid)


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    state_dir = tmp_path_factory.mktemp("workers-state")
    log = state_dir / "serve.log"
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _serve_argv(state_dir, port),
            cwd=REPO,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: http_status(f"http://{LOCALHOST}:{port}/healthz", timeout=2.0) == 200,
            30,
            "the supervised authority to answer /healthz",
            log_path=log,
            process=proc,
        )
        wait_until(lambda: len(_workers(proc.pid)) == 2, 15, "two worker processes")
        yield Supervisor(proc=proc, port=port, log=log, workers_seen_at=time.monotonic())
    finally:
        _kill_group(proc)


def test_each_worker_listens_on_its_own_socket(supervisor: Supervisor) -> None:
    workers = supervisor.workers()
    assert len(workers) == 2, _children(supervisor.proc.pid)
    # Both workers bound theirs (a worker starts serving a little after another).
    wait_until(
        lambda: all(_owned(workers, supervisor.port, _LISTEN).values()),
        15,
        "a listening socket in every worker",
    )
    owned = _owned(workers, supervisor.port, _LISTEN)
    assert all(len(inodes) == 1 for inodes in owned.values()), owned
    first, second = owned.values()
    assert first != second, "the workers share one listening socket"
    # Those are the only listening sockets on the port; the supervisor holds none.
    assert first | second == _tcp_inodes(supervisor.port, _LISTEN)
    assert not _owned({supervisor.proc.pid}, supervisor.port, _LISTEN)[supervisor.proc.pid]


def test_connections_are_spread_over_both_workers(supervisor: Supervisor) -> None:
    workers = supervisor.workers()
    assert len(workers) == 2
    connections = [
        http.client.HTTPConnection(LOCALHOST, supervisor.port, timeout=10) for _ in range(32)
    ]
    try:
        for conn in connections:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200
            response.read()  # the connection stays open (keep-alive)
        established = _owned(workers, supervisor.port, _ESTABLISHED)
        counts = {pid: len(inodes) for pid, inodes in established.items()}
        assert sum(counts.values()) == 32, counts
        assert all(count > 0 for count in counts.values()), counts
    finally:
        for conn in connections:
            conn.close()


def test_a_killed_worker_is_replaced(supervisor: Supervisor) -> None:
    before = supervisor.workers()
    assert len(before) == 2
    # A worker dying in its first seconds counts as a start-up failure: let them settle.
    settle = supervisor.workers_seen_at + STARTUP_SECONDS + 0.5 - time.monotonic()
    if settle > 0:
        time.sleep(settle)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: len(after := supervisor.workers()) == 2 and victim not in after,
        15,
        "a replacement worker",
        log_path=supervisor.log,
        process=supervisor.proc,
    )
    after = supervisor.workers()
    assert before - {victim} <= after
    replacement = (after - before).pop()
    wait_until(
        lambda: len(_owned({replacement}, supervisor.port, _LISTEN)[replacement]) == 1,
        15,
        "the replacement worker's listening socket",
        log_path=supervisor.log,
    )
    assert supervisor.healthy()
    assert supervisor.proc.poll() is None
    # Every connection is served (none is queued on a dead worker's socket).
    for _ in range(16):
        assert supervisor.healthy()


def _allowed_cpus(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def test_workers_are_pinned_to_a_cpu_each_when_they_match_the_cpus(
    supervisor: Supervisor,
) -> None:
    """``--cpu-affinity auto`` (the default): with as many workers as CPUs, one CPU
    each, all different; otherwise left to the scheduler (what this machine has
    decides which of the two is checked). Runs after a worker was killed: its
    replacement took its CPU."""
    available = os.sched_getaffinity(0)
    workers = supervisor.workers()
    pinned = [_allowed_cpus(pid) for pid in workers]
    if len(available) == len(workers):
        assert all(len(cpus) == 1 for cpus in pinned), pinned
        assert set().union(*pinned) == available, pinned
    else:
        assert all(cpus == available for cpus in pinned), pinned
    # The supervisor itself is never pinned.
    assert _allowed_cpus(supervisor.proc.pid) == available


def test_sigterm_stops_the_supervisor_and_every_worker(supervisor: Supervisor) -> None:
    workers = supervisor.workers()
    assert len(workers) == 2
    supervisor.proc.send_signal(signal.SIGTERM)
    try:
        code = supervisor.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the supervisor ignored SIGTERM\n{log_tail(supervisor.log)}")
    assert code == 0, log_tail(supervisor.log)
    # No worker (nor any helper process of the supervisor's) outlives it.
    wait_until(lambda: not _group(supervisor.proc.pid), 20, "every worker to exit")
    assert not any(Path(f"/proc/{pid}").exists() and _cmdline(pid) for pid in workers)
    assert not _tcp_inodes(supervisor.port, _LISTEN)
    assert "Traceback" not in supervisor.log.read_text()


def test_a_port_taken_by_another_program_fails_with_one_line(tmp_path: Path) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEPORT
    try:
        holder.bind((LOCALHOST, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = subprocess.Popen(
            _serve_argv(tmp_path / "state", port),
            cwd=REPO,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=20)
        finally:
            _kill_group(proc)
    finally:
        holder.close()
    text = err.decode("utf-8", "replace")
    assert proc.returncode not in (0, None), text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, text
    assert errors[0].startswith("passgeni: error") and f"{LOCALHOST}:{port}" in errors[0], text
    assert not out.strip()
