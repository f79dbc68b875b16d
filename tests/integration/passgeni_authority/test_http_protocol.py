"""The served HTTP protocol (``_http``): the issuance endpoints answered without ASGI.

The fast path must answer exactly what the ASGI path answers (same status,
headers and body shape, errors included), in one write; leave every request
it does not take to uvicorn; and keep uvicorn's connection rules: pipelined
answers in order, keep-alive, ``Connection: close``, a client that leaves
mid-request, bounded bodies, the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from passgeni_authority import AuthoritySettings, create_app
from passgeni_authority._http import AuthorityHttpProtocol
from passgeni_authority._service import AuthorityService
from passgeni_authority._workers import uvicorn_options
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support import free_port, wait_until

GENERATE = b'{"compliance_standard":"soc2"}'


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An embedded authority whose connections record every socket write, and
    a count of the requests its fast path answered."""
    writes: list[bytes] = []
    answered: list[str] = []
    made = AuthorityHttpProtocol.connection_made
    fast = AuthorityHttpProtocol._answer

    class Recording:
        def __init__(self, transport: Any) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            writes.append(bytes(data))
            self._transport.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

    def connection_made(self: AuthorityHttpProtocol, transport: Any) -> None:
        made(self, Recording(transport))  # records, then delegates

    async def counted(self: AuthorityHttpProtocol, cycle: Any) -> None:
        answered.append(cycle.endpoint)
        await fast(self, cycle)

    monkeypatch.setattr(AuthorityHttpProtocol, "connection_made", connection_made)
    monkeypatch.setattr(AuthorityHttpProtocol, "_answer", counted)
    with EmbeddedAuthority(settings=AuthoritySettings(state_dir=tmp_path)) as embedded:
        yield embedded, writes, answered


def _head(raw: bytes) -> tuple[str, dict[str, str]]:
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return lines[0], dict(
        (k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])
    )


def _read_responses(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """``count`` whole HTTP responses (each with a content-length) off ``sock``."""
    sock.settimeout(timeout)
    buffer = b""
    out: list[bytes] = []
    while len(out) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            _status, headers = _head(buffer)
            total = end + 4 + int(headers["content-length"])
            if len(buffer) >= total:
                out.append(buffer[:total])
                buffer = buffer[total:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(out)} of {count} responses")
        buffer += chunk
    return out


def _request(path: str, key: str, body: bytes, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_fast_answers_are_one_write_and_match_the_asgi_path(recorded: Any) -> None:
    embedded, writes, answered = recorded
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {embedded.api_key}"
    url = embedded.base_url
    r = http.post(f"{url}/api/generate", json={"compliance_standard": "soc2"}, timeout=10)
    assert r.status_code == 200, r.text
    assert answered == ["POST /api/generate"]
    assert len(writes) == 1 and writes[0].endswith(r.content)  # head and body together
    fast_status, fast_headers = _head(writes[0])
    sid = r.json()["generation_session_id"]

    # The same endpoint through ASGI (a query string is not a hot target):
    # same status line and header names, the same answer's fields.
    writes.clear()
    r2 = http.post(f"{url}/api/generate?via=asgi", data=GENERATE, timeout=10)
    assert r2.status_code == 200 and answered == ["POST /api/generate"]
    asgi_status, asgi_headers = _head(writes[0])
    assert fast_status == asgi_status == "HTTP/1.1 200 OK"
    assert (
        set(fast_headers)
        == set(asgi_headers)
        == {
            "date",
            "server",
            "content-type",
            "content-length",
        }
    )
    assert fast_headers["content-type"] == asgi_headers["content-type"] == "application/json"
    assert set(r.json()) == set(r2.json())

    writes.clear()
    r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
    assert r.status_code == 201 and len(writes) == 1 and writes[0].endswith(r.content)
    assert r.json()["cert_id"] and answered[-1] == "POST /api/generate-certificate"
    # Errors keep the API's shape and status, in one write too.
    writes.clear()
    r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
    assert r.status_code == 409 and len(writes) == 1
    assert r.json()["code"] == "session_already_used"
    writes.clear()
    r = requests.post(f"{url}/api/generate", data=GENERATE, timeout=10)  # no key
    assert r.status_code == 401 and len(writes) == 1 and r.json()["code"] == "unauthenticated"
    # Other endpoints are uvicorn's: head, then body.
    writes.clear()
    r = http.get(f"{url}/healthz", timeout=10)
    assert r.status_code == 200 and len(writes) == 2 and writes[1] == r.content
    assert answered.count("POST /api/generate") == 2  # the unauthenticated one too


def test_pipelined_requests_are_answered_in_order(recorded: Any) -> None:
    embedded, _writes, answered = recorded
    address = (embedded.host, embedded.port)
    key = embedded.api_key
    with socket.create_connection(address) as sock:
        # Four requests in one packet: the first is answered by the fast path,
        # the ones queued behind it by uvicorn's pipeline, in order.
        sock.sendall(
            _request("/api/generate", key, GENERATE)
            + _request("/api/generate-certificate", key, b'{"generation_session_id":"x"}')
            + b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
            + _request("/api/generate", key, b"{not json")
        )
        first, second, third, fourth = _read_responses(sock, 4)
        assert first.startswith(b"HTTP/1.1 200") and b"generation_session_id" in first
        assert second.startswith(b"HTTP/1.1 400") and b"session_invalid" in second
        assert third.startswith(b"HTTP/1.1 200") and b'"status"' in third
        assert fourth.startswith(b"HTTP/1.1 400") and b"not valid JSON" in fourth
        # The connection is still good, and the next request is fast again.
        before = len(answered)
        sock.sendall(_request("/api/generate", key, GENERATE))
        (fifth,) = _read_responses(sock, 1)
        assert fifth.startswith(b"HTTP/1.1 200") and len(answered) == before + 1


def test_connection_close_and_http_1_0_take_uvicorns_path(recorded: Any) -> None:
    embedded, _writes, answered = recorded
    address = (embedded.host, embedded.port)
    with socket.create_connection(address) as sock:
        sock.sendall(_request("/api/generate", embedded.api_key, GENERATE, "Connection: close"))
        (answer,) = _read_responses(sock, 1)
        status, headers = _head(answer)
        assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
        sock.settimeout(10)
        assert sock.recv(1) == b""  # closed by the server
    with socket.create_connection(address) as sock:
        request = _request("/api/generate", embedded.api_key, GENERATE)
        sock.sendall(request.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 200")
    assert answered == []


def test_oversized_bodies_are_refused_and_the_connection_stays_usable(recorded: Any) -> None:
    embedded, _writes, answered = recorded
    limit = embedded.service.settings.max_body_bytes
    big = b'{"compliance_standard":"soc2","x":"' + b"a" * (3 * limit) + b'"}'
    chunked = (
        b"".join(
            b"%x\r\n%s\r\n" % (len(part), part)
            for part in (big[i : i + 8192] for i in range(0, len(big), 8192))
        )
        + b"0\r\n\r\n"
    )
    head = (
        "POST /api/generate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    with socket.create_connection((embedded.host, embedded.port)) as sock:
        # No key: 401 before the body is judged (as on the ASGI path).
        sock.sendall(head.encode() + b"\r\n" + chunked)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 401")
        sock.sendall(head.encode() + f"Authorization: Bearer {embedded.api_key}\r\n\r\n".encode())
        sock.sendall(chunked)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 413")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "invalid_request"
        sock.sendall(_request("/api/generate", embedded.api_key, GENERATE))
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 200")
    assert answered == ["POST /api/generate"] * 3


def test_a_client_that_leaves_mid_commit_loses_nothing(recorded: Any) -> None:
    embedded, _writes, answered = recorded
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {embedded.api_key}"
    url = embedded.base_url
    sid = http.post(f"{url}/api/generate", data=GENERATE, timeout=10).json()[
        "generation_session_id"
    ]
    body = json.dumps({"generation_session_id": sid, "label": "left early"}).encode()
    with socket.create_connection((embedded.host, embedded.port)) as sock:
        sock.sendall(_request("/api/generate-certificate", embedded.api_key, body))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # Reset before (or while) the answer is written: the certificate is still
    # committed once, the session is spent, and the server keeps serving.
    wait_until(lambda: "POST /api/generate-certificate" in answered, 10.0, "the redemption")

    def spent() -> bool:
        r = http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
        return r.status_code == 409

    wait_until(spent, 10.0, "the session to be spent")
    audit = http.get(f"{url}/api/audit", timeout=10).json()
    assert [c["label"] for c in audit["items"]].count("left early") == 1


@contextlib.contextmanager
def _served(service: AuthorityService, log_level: str) -> Iterator[str]:
    """The app under uvicorn with the served options (no logging set-up of its own)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(service=service),
        host="127.0.0.1",
        port=port,
        **uvicorn_options(log_level),
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30.0, "uvicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_the_access_log_line_is_uvicorns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    service = AuthorityService(AuthoritySettings(state_dir=tmp_path))
    key = service.create_api_key("logged").key
    try:
        with (
            caplog.at_level(logging.INFO, logger="uvicorn.access"),
            _served(service, "info") as url,
        ):
            r = requests.post(
                f"{url}/api/generate",
                data=GENERATE,
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert r.status_code == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                rec.name == "uvicorn.access" for rec in caplog.records
            ):
                time.sleep(0.05)
    finally:
        service.close()
    (record,) = [rec for rec in caplog.records if rec.name == "uvicorn.access"]
    assert isinstance(record.args, tuple) and len(record.args) == 5  # AccessFormatter's shape
    message = record.getMessage()
    assert message.startswith("127.0.0.1:") and message.endswith(
        '"POST /api/generate HTTP/1.1" 200'
    )
    assert key not in message


def test_the_fast_path_needs_uvicorns_connection_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = AuthorityService(AuthoritySettings(state_dir=tmp_path))
    loop = asyncio.new_event_loop()

    def protocol(**options: Any) -> AuthorityHttpProtocol:
        config = uvicorn.Config(
            create_app(service=service), **uvicorn_options("warning"), **options
        )
        config.load()
        return AuthorityHttpProtocol(config, ServerState(), {}, loop)

    try:
        assert set(protocol()._hot) == {
            b"/api/generate",
            b"/api/generate-batch",
            b"/api/generate-certificate",
            b"/api/generate-certificates",
        }
        # uvicorn's own 503 beyond the concurrency limit: only its path answers it.
        assert protocol(limit_concurrency=10)._hot == {}
        # A uvicorn without the state the fast path drives: everything is uvicorn's.
        monkeypatch.delattr(HttpToolsProtocol, "on_response_complete")
        assert protocol()._hot == {}
    finally:
        loop.close()
        service.close()


class _Transport:
    """Just enough of an asyncio transport to drive the protocol by hand."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8787), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_an_answer_waits_while_the_client_is_not_reading(tmp_path: Path) -> None:
    service = AuthorityService(AuthoritySettings(state_dir=tmp_path))
    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(create_app(service=service), **uvicorn_options("warning"))
        config.load()
        protocol = AuthorityHttpProtocol(config, ServerState(), {}, loop)
        transport = _Transport()
        protocol.connection_made(cast(Any, transport))  # a stand-in transport
        protocol.pause_writing()  # the transport's buffer is full: the client stopped reading
        protocol.data_received(
            b"POST /api/generate HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(GENERATE), GENERATE)
        )
        loop.run_until_complete(asyncio.sleep(0.05))
        assert transport.written == []  # answered, but held until the client reads
        protocol.resume_writing()
        loop.run_until_complete(asyncio.sleep(0.05))
        (answer,) = transport.written
        assert answer.startswith(b"HTTP/1.1 401") and b"unauthenticated" in answer
        protocol.connection_lost(None)
    finally:
        loop.close()
        service.close()
