"""The unit tier starts no server of any kind: this guard fails a test that tries.

Every unit test runs with ``socket.socket.bind``/``listen`` refused and with
server programs refused to ``subprocess.Popen`` (OpenBao, moto, PostgreSQL,
Chromium, ansible-playbook, an ASGI server, a served authority). A test that
needs one belongs in ``tests/integration`` (or ``tests/reliability``), where
the server fixtures are. The refusal raises :class:`ServerInUnitTier` where
the server is started and, in case the code under test swallows that error,
fails the test at teardown too. Python child processes get the same refusal
through ``_child_guard/sitecustomize.py`` (on their ``PYTHONPATH``), so a CLI
run as a subprocess cannot serve an embedded authority either.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Programs that are (or start) a server, by the basename of argv[0].
SERVER_PROGRAMS = frozenset(
    {
        "bao",
        "vault",
        "moto_server",
        "postgres",
        "pg_ctl",
        "initdb",
        "runuser",
        "sudo",
        "chromium",
        "chromium-browser",
        "ansible-playbook",
        "ansible-galaxy",
        "ansible-test",
        "uvicorn",
        "granian",
        "wrk",
    }
)
# Python modules that serve when run (``python -m NAME`` or named in ``-c`` code).
SERVER_MODULES = ("passgeni_authority", "uvicorn", "granian", "moto.server", "EmbeddedAuthority")


class ServerInUnitTier(AssertionError):
    """A unit test tried to listen on a socket or start a server process."""


class ServerGuard:
    def __init__(self) -> None:
        self.violations: list[str] = []

    def refuse(self, what: str) -> None:
        self.violations.append(what)
        raise ServerInUnitTier(
            f"unit tests start no servers ({what}): move the test to tests/integration"
        )

    def check_argv(self, args: Any) -> None:
        argv: Sequence[Any] = [args] if isinstance(args, str | bytes | os.PathLike) else args
        words = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in argv]
        if not words:
            return
        program = os.path.basename(words[0].split()[0]) if words[0].strip() else ""
        if program in SERVER_PROGRAMS:
            self.refuse(f"subprocess {program}")
        if program.startswith("python") or program.startswith("pypy"):
            rest = " ".join(words[1:])
            for module in SERVER_MODULES:
                if module in rest:
                    self.refuse(f"subprocess python running {module}")


CHILD_GUARD = Path(__file__).resolve().parent / "_child_guard"


@pytest.fixture(autouse=True)
def server_guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ServerGuard]:
    guard = ServerGuard()
    child_log = tmp_path / "server-guard.log"
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(CHILD_GUARD), path])))
    monkeypatch.setenv("UNIT_SERVER_GUARD_LOG", str(child_log))
    popen_init = subprocess.Popen.__init__

    def refuse_bind(self: socket.socket, address: Any) -> None:
        guard.refuse(f"socket.bind({address!r})")

    def refuse_listen(self: socket.socket, *backlog: int) -> None:
        guard.refuse("socket.listen()")

    def checked_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
        guard.check_argv(args)
        popen_init(self, args, *rest, **kw)

    monkeypatch.setattr(socket.socket, "bind", refuse_bind)
    monkeypatch.setattr(socket.socket, "listen", refuse_listen)
    monkeypatch.setattr(subprocess.Popen, "__init__", checked_popen)
    yield guard
    if child_log.exists():
        guard.violations.extend(child_log.read_text(encoding="utf-8").splitlines())
        child_log.unlink()
    if guard.violations:
        pytest.fail("unit test tried to start a server: " + "; ".join(guard.violations))
