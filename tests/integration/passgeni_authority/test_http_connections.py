"""The served app at the HTTP level: one app, one middleware stack, uvicorn's connections.

Every endpoint, the four issuance endpoints included, is a route of the one
ASGI app and goes through its middleware stack, so middleware added after
``create_app`` sees them all. Connections are uvicorn's own: pipelined
answers in order, ``Connection: close``, bounded bodies, a client that
leaves mid-request, the access log.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

import passgeni_authority
from passgeni_authority import AuthoritySettings, create_app
from passgeni_authority._service import AuthorityService
from passgeni_authority._workers import uvicorn_options
from tests.support import free_port, wait_until
from tests.support.seeds import commitment, with_commitments

GENERATE = json.dumps({"compliance_standard": "soc2", "seed_commitment": commitment()}).encode()
ISSUANCE = (
    "/api/generate",
    "/api/generate-batch",
    "/api/generate-certificate",
    "/api/generate-certificates",
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AuthorityService]:
    svc = AuthorityService(AuthoritySettings(state_dir=tmp_path, public_url="http://a.test"))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def key(service: AuthorityService) -> str:
    return service.create_api_key("conn", rate_limit=100_000).key


@contextlib.contextmanager
def _served(app: FastAPI, log_level: str = "warning") -> Iterator[tuple[str, int]]:
    """``app`` under uvicorn with the served options (no logging set-up of its own)."""
    port = free_port()
    config = uvicorn.Config(
        app,
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
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


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


class _Recorder:
    """An ASGI middleware: records every HTTP request it sees, marks every answer."""

    def __init__(self, app: Any, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.seen.append(f"{scope['method']} {scope['path']}")

        async def marked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-seen", b"1")]}
            await send(message)

        await self.app(scope, receive, marked)


def test_middleware_added_after_create_app_sees_the_issuance_endpoints(
    service: AuthorityService, key: str
) -> None:
    app = create_app(service=service)
    seen: list[str] = []
    app.add_middleware(_Recorder, seen=seen)
    with _served(app) as (host, port):
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        url = f"http://{host}:{port}"
        answers = []
        r = http.post(f"{url}/api/generate", data=GENERATE, timeout=10)
        answers.append(r)
        sid = r.json()["generation_session_id"]
        batch = with_commitments("/api/generate-batch", {"compliance_standard": "soc2", "count": 2})
        r = http.post(f"{url}/api/generate-batch", json=batch)
        answers.append(r)
        batch = r.json()["generation_session_ids"]
        answers.append(
            http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})
        )
        items = [{"generation_session_id": s} for s in batch]
        answers.append(http.post(f"{url}/api/generate-certificates", json={"items": items}))
        answers.append(requests.post(f"{url}/api/generate", data=GENERATE, timeout=10))  # no key
        answers.append(http.get(f"{url}/healthz", timeout=10))
    assert [r.status_code for r in answers] == [200, 200, 201, 201, 401, 200]
    assert all(r.headers["x-seen"] == "1" for r in answers)
    assert seen == [f"POST {path}" for path in ISSUANCE] + ["POST /api/generate", "GET /healthz"]
    assert answers[4].json()["code"] == "unauthenticated"


def test_trusted_host_and_cors_apply_to_issuance(service: AuthorityService, key: str) -> None:
    app = create_app(service=service)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["authority.test"])
    app.add_middleware(CORSMiddleware, allow_origins=["https://ui.test"], allow_methods=["POST"])
    with _served(app) as (host, port):
        url = f"http://{host}:{port}"
        headers = {"Authorization": f"Bearer {key}", "Host": "authority.test"}
        r = requests.post(f"{url}/api/generate", data=GENERATE, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        # Another Host: refused by TrustedHost before the endpoint runs.
        r = requests.post(
            f"{url}/api/generate", data=GENERATE, headers={**headers, "Host": "evil"}, timeout=10
        )
        assert r.status_code == 400
        # A browser's preflight and the answer's CORS header, on issuance too.
        r = requests.options(
            f"{url}/api/generate-certificate",
            headers={
                "Host": "authority.test",
                "Origin": "https://ui.test",
                "Access-Control-Request-Method": "POST",
            },
            timeout=10,
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ui.test"
        r = requests.post(
            f"{url}/api/generate",
            data=GENERATE,
            headers={**headers, "Origin": "https://ui.test"},
            timeout=10,
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ui.test"


def test_issuance_endpoints_are_routes_with_the_apis_errors(
    service: AuthorityService, key: str
) -> None:
    app = create_app(service=service)
    spec = app.openapi()
    for path in ISSUANCE:
        (operation,) = spec["paths"][path].values()
        assert spec["paths"][path].keys() == {"post"}
        assert operation["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
        assert set(operation["responses"]) == {"201" if "certificate" in path else "200"}
    with _served(app) as (host, port):
        url = f"http://{host}:{port}"
        for path in ISSUANCE:
            r = requests.get(f"{url}{path}", timeout=10)
            assert r.status_code == 405, (path, r.text)
            assert r.json()["code"] == "invalid_request"
        # A query string does not change the route.
        r = requests.post(
            f"{url}/api/generate?via=query",
            data=GENERATE,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json()["generation_session_id"]
        r = requests.post(f"{url}/api/generate/", data=GENERATE, timeout=10, allow_redirects=False)
        assert r.status_code in (307, 404)


def test_pipelined_requests_are_answered_in_order(service: AuthorityService, key: str) -> None:
    with _served(create_app(service=service)) as address, socket.create_connection(address) as sock:
        # Four requests in one packet, answered in order.
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
        # The connection is still good.
        sock.sendall(_request("/api/generate", key, GENERATE))
        (fifth,) = _read_responses(sock, 1)
        assert fifth.startswith(b"HTTP/1.1 200")


def test_connection_close_and_http_1_0(service: AuthorityService, key: str) -> None:
    with _served(create_app(service=service)) as address:
        with socket.create_connection(address) as sock:
            sock.sendall(_request("/api/generate", key, GENERATE, "Connection: close"))
            (answer,) = _read_responses(sock, 1)
            status, headers = _head(answer)
            assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
            sock.settimeout(10)
            assert sock.recv(1) == b""  # closed by the server
        with socket.create_connection(address) as sock:
            request = _request("/api/generate", key, GENERATE)
            sock.sendall(request.replace(b"HTTP/1.1", b"HTTP/1.0", 1))
            (answer,) = _read_responses(sock, 1)
            assert answer.startswith(b"HTTP/1.1 200")


def _chunked_body_over(limit: int) -> bytes:
    """A JSON body three times ``limit``, chunked in 8 KiB parts."""
    big = b'{"compliance_standard":"soc2","x":"' + b"a" * (3 * limit) + b'"}'
    parts = (big[i : i + 8192] for i in range(0, len(big), 8192))
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def test_oversized_bodies_are_refused_and_the_connection_stays_usable(
    service: AuthorityService, key: str
) -> None:
    limit = service.settings.max_body_bytes
    chunked = _chunked_body_over(limit)
    head = (
        "POST /api/generate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n"
    )
    with _served(create_app(service=service)) as address, socket.create_connection(address) as sock:
        # No key: 401 before the body is judged.
        sock.sendall(head.encode() + b"\r\n" + chunked)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 401")
        sock.sendall(head.encode() + f"Authorization: Bearer {key}\r\n\r\n".encode())
        sock.sendall(chunked)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 413")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "invalid_request"
        # A declared length over the limit: 413 without reading the body.
        sock.sendall(
            _request("/api/generate", key, b"").replace(
                b"Content-Length: 0", f"Content-Length: {limit + 1}".encode()
            )
        )
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 413")


def test_oversized_bodies_keep_the_connection_when_fully_sent(
    service: AuthorityService, key: str
) -> None:
    limit = service.settings.max_body_bytes
    chunked = _chunked_body_over(limit)
    head = (
        "POST /api/generate HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    with _served(create_app(service=service)) as address, socket.create_connection(address) as sock:
        sock.sendall(head.encode() + chunked)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 413")
        sock.sendall(_request("/api/generate", key, GENERATE))
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 200")


class _HoldUntilGone:
    """An ASGI middleware: reads the first redemption's whole body, signals,
    waits for the client to disconnect, and only then runs the endpoint on
    that body."""

    def __init__(self, app: Any, body_read: threading.Event) -> None:
        self.app = app
        self.read = threading.Event()
        self.body_read = body_read

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/api/generate-certificate"
            or self.read.is_set()
        ):
            await self.app(scope, receive, send)
            return
        self.read.set()
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if not message.get("more_body", False):
                break
        self.body_read.set()
        while (await receive())["type"] != "http.disconnect":
            pass

        async def replay() -> Any:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        await self.app(scope, replay, send)


def test_a_client_that_leaves_mid_redemption_loses_nothing(
    service: AuthorityService, key: str
) -> None:
    app = create_app(service=service)
    read = threading.Event()
    app.add_middleware(_HoldUntilGone, body_read=read)
    with _served(app) as (host, port):
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {key}"
        url = f"http://{host}:{port}"
        sid = http.post(f"{url}/api/generate", data=GENERATE, timeout=10).json()[
            "generation_session_id"
        ]
        body = json.dumps({"generation_session_id": sid, "label": "left early"}).encode()
        with socket.create_connection((host, port)) as sock:
            sock.sendall(_request("/api/generate-certificate", key, body))
            assert read.wait(10), "the redemption's body was not read"
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        # Reset after the body was read, before the answer: the certificate is
        # still committed once, the session is spent, the server keeps serving.

        def labelled() -> int:
            audit = http.get(f"{url}/api/audit", timeout=10).json()
            return [c["label"] for c in audit["items"]].count("left early")

        wait_until(lambda: labelled() == 1, 10.0, "the certificate of the gone client")
        r = requests.post(
            f"{url}/api/generate-certificate",
            json={"generation_session_id": sid},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 409 and r.json()["code"] == "session_already_used"
        time.sleep(0.2)
        assert labelled() == 1


def test_the_access_log_line_is_uvicorns_and_has_no_key(
    service: AuthorityService, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="uvicorn.access"),
        _served(create_app(service=service), "info") as (host, port),
    ):
        r = requests.post(
            f"http://{host}:{port}/api/generate",
            data=GENERATE,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200
        wait_until(
            lambda: any(rec.name == "uvicorn.access" for rec in caplog.records), 10.0, "a log line"
        )
    (record,) = [rec for rec in caplog.records if rec.name == "uvicorn.access"]
    message = record.getMessage()
    assert message.startswith("127.0.0.1:") and message.endswith(
        '"POST /api/generate HTTP/1.1" 200'
    )
    assert key not in message and key.split("_")[1] not in message


def test_shutdown_answers_the_redemption_in_flight(service: AuthorityService, key: str) -> None:
    """uvicorn's graceful shutdown waits for a request being answered."""
    app = create_app(service=service)
    started = threading.Event()

    class _Slow:
        def __init__(self, inner: Any) -> None:
            self.app = inner

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/api/generate":
                started.set()
                await asyncio.sleep(0.5)
            await self.app(scope, receive, send)

    app.add_middleware(_Slow)
    result: list[requests.Response] = []
    with _served(app) as (host, port):
        thread = threading.Thread(
            target=lambda: result.append(
                requests.post(
                    f"http://{host}:{port}/api/generate",
                    data=GENERATE,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=10,
                )
            )
        )
        thread.start()
        assert started.wait(10)
    thread.join(10)
    (r,) = result
    assert r.status_code == 200 and r.json()["generation_session_id"]


def _imports(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_authority_uses_only_public_server_and_framework_names() -> None:
    """No uvicorn internals (``uvicorn.protocols``, ``uvicorn.server``...), no
    underscore names of uvicorn, Starlette or FastAPI."""
    root = Path(passgeni_authority.__file__).parent
    bad = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in _imports(tree):
            parts = name.split(".")
            internal = parts[0] == "uvicorn" and len(parts) > 1  # only `import uvicorn`
            private = parts[0] in ("uvicorn", "starlette", "fastapi") and any(
                p.startswith("_") for p in parts
            )
            if internal or private:
                bad.append(f"{path.name}: {name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("uvicorn", "starlette", "fastapi")
                and node.attr.startswith("_")
            ):
                bad.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert bad == []
