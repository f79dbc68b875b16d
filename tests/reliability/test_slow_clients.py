"""Slow and oversized requests (issue #21, finding 5).

* Every endpoint that reads a body reads it through one reader
  (``passgeni_authority._issuance_http.read_body``): over ``max_body_bytes`` is a 413 before
  a byte is read, a body that does not arrive within ``body_read_seconds`` is a 408, a client
  that leaves mid-body is no error in the log. Checked on each such endpoint of the real app.
* Headers are the ASGI server's to bound. Under granian (docs/deployment-asgi.md) oversized
  headers and too many headers answer 431 and headers that trickle in are cut off; uvicorn
  with httptools offers no public setting for either, which the deployment doc says.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support import REPO_ROOT, free_port, wait_until

BODY_ENDPOINTS = (
    "/api/generate",
    "/api/generate-batch",
    "/api/generate-certificate",
    "/api/generate-certificates",
    "/api/certificates/pg_aaaaaaaaaaaaaaaaaaaaaaaa/revoke",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAuthority]:
    state = tmp_path_factory.mktemp("slow-clients")
    settings = AuthoritySettings(
        state_dir=state, rate_limits=RateLimits.unlimited(), body_read_seconds=1.0
    )
    with EmbeddedAuthority(settings=settings) as embedded:
        yield embedded


def _raw(port: int, request: bytes, *, wait: float = 10.0) -> bytes:
    """Send ``request`` and return the answer's first bytes (b"" if the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(request)
        try:
            return sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"no answer within {wait} s: the server holds the connection")


def _head(path: str, key: str, length: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status_and_body(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _port(embedded: EmbeddedAuthority) -> int:
    return int(str(embedded.base_url).rsplit(":", 1)[1])


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_a_declared_oversized_body_is_413_and_a_trickled_one_408(
    served: EmbeddedAuthority, path: str
) -> None:
    port, key = _port(served), str(served.api_key)
    status, body = _status_and_body(_raw(port, _head(path, key, "100000000000")))
    assert status == 413 and body["code"] == "invalid_request", body
    # 100 bytes declared, 5 sent, then silence: answered, not held open.
    status, body = _status_and_body(_raw(port, _head(path, key, "100") + b'{"a":'))
    assert status == 408 and body["code"] == "invalid_request", body
    assert "within 1 s" in body["message"]


def test_a_client_leaving_mid_body_is_not_an_error(
    served: EmbeddedAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    port, key = _port(served), str(served.api_key)
    caplog.set_level(logging.WARNING)
    for path in BODY_ENDPOINTS:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(_head(path, key, "100") + b'{"a":')
    assert requests.get(f"{served.base_url}/healthz", timeout=10).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.fixture(scope="module")
def granian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``passgeni authority serve --server granian``, as an operator runs it."""
    state = tmp_path_factory.mktemp("granian-limits")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSGENI_")}
    env |= {"PYTHONPATH": str(REPO_ROOT), "PASSGENI_STATE_DIR": str(state)}
    log = state / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "passgeni_authority", "serve", "--server", "granian",
                "--host", "127.0.0.1", "--port", str(port), "--header-timeout", "1",
                "--workers", "2",
            ],
            env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok,
            60.0,
            "granian serving the authority",
            log_path=log,
            process=proc,
        )
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_granian_bounds_header_size_count_and_time(granian: int) -> None:
    # 20 MB of headers: refused once the 64 KB header buffer is full, not buffered whole.
    with socket.create_connection(("127.0.0.1", granian), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        sent = 0
        try:
            for i in range(2000):
                sock.sendall(b"X-Pad-%d: " % i + b"a" * 10_000 + b"\r\n")
                sent += 10_000
        except OSError:
            pass
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    many = b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"".join(
        b"X-%d: a\r\n" % i for i in range(500)
    )
    assert _raw(granian, many + b"\r\n").startswith(b"HTTP/1.1 431")
    # Headers that never finish: the connection is closed after the header timeout.
    assert _raw(granian, b"GET /healthz HTTP/1.1\r\nHost: t\r\n") == b""
    # And the API answers under it.
    r = requests.post(f"http://127.0.0.1:{granian}/api/generate", json={}, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated", r.text
