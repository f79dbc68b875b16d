"""The unit tier's guard (``tests/unit/conftest.py``) refuses servers: proven here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import ServerGuard, ServerInUnitTier


def test_listening_socket_is_refused(server_guard: ServerGuard) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(ServerInUnitTier, match=r"socket\.bind"):
            sock.bind(("127.0.0.1", 0))
        with pytest.raises(ServerInUnitTier, match=r"socket\.listen"):
            sock.listen()
    assert len(server_guard.violations) == 2
    server_guard.violations.clear()  # seen and expected: do not fail this test at teardown


def test_embedded_authority_is_refused(server_guard: ServerGuard, tmp_path: object) -> None:
    from passgeni_authority.embedded import EmbeddedAuthority

    with pytest.raises(ServerInUnitTier), EmbeddedAuthority(state_dir=tmp_path):
        pass  # pragma: no cover - never reached: the guard refuses the bind
    assert server_guard.violations
    server_guard.violations.clear()


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/chromium", "--headless"],
        ["bao", "server", "-dev"],
        ["ansible-playbook", "site.yml"],
        [sys.executable, "-m", "passgeni_authority", "serve"],
    ],
)
def test_server_programs_are_refused(server_guard: ServerGuard, argv: list[str]) -> None:
    with pytest.raises(ServerInUnitTier, match="subprocess"):
        subprocess.Popen(argv)
    server_guard.violations.clear()


def test_a_plain_subprocess_is_allowed() -> None:
    done = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True)
    assert done.stdout.strip() == "ok"


def test_a_client_socket_is_allowed() -> None:
    # Connecting needs no bind: clients (and socketpair, asyncio's self-pipe) stay usable.
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_a_child_process_that_listens_is_refused(server_guard: ServerGuard) -> None:
    code = "import socket\ns = socket.socket()\ntry:\n    s.listen()\nexcept OSError as e:\n    print(e)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "unit tests start no servers" in done.stdout, done.stderr
    log = Path(os.environ["UNIT_SERVER_GUARD_LOG"])
    assert "socket.listen" in log.read_text()
    log.unlink()  # seen and expected: do not fail this test at teardown
