"""AuthorityClient transport behaviour against a real (stdlib) HTTP server.

The server here is a small scripted ``http.server`` used only for what a real
authority cannot be made to do on demand: answer 503/429 on cue, time out,
redirect, send arbitrary error bodies, lie in a certificate. It records every
byte it receives, which is how the no-secret-on-the-wire property is proven.
The end-to-end contract against the real ``passgeni_authority`` lives in
``test_provision.py`` and ``test_cli_remote.py``.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from passgeni_core import (
    MAPPING_VERSION,
    AuthorityClient,
    AuthorityError,
    AuthorityUnavailable,
    CertificateClaims,
    CertificateRequest,
    EntropySource,
    GenerationParameters,
    InvalidParameters,
    InvalidRequest,
    IssuedCertificate,
    NotFound,
    PassgeniError,
    PermissionDenied,
    PresetNotMet,
    RateLimited,
    SessionAlreadyUsed,
    SessionExpired,
    SessionInvalid,
    Target,
    Unauthenticated,
    check_preset,
    entropy_report,
    standards_met,
)

API_KEY = "pgk_test_SECRET_api_key_0123456789"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    #: Close the connection without answering (the request was received).
    drop: bool = False


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class _Tee:
    """Wraps the request stream; keeps a copy of every byte read from the socket."""

    def __init__(self, inner: Any, sink: bytearray) -> None:
        self._inner, self._sink = inner, sink

    def read(self, *args: Any) -> bytes:
        data: bytes = self._inner.read(*args)
        self._sink.extend(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._inner.readline(*args)
        self._sink.extend(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FakeAuthority:
    """A scripted authority on 127.0.0.1: queued replies first, then a tiny real
    implementation of the contract (sessions, ES256 certificates, records)."""

    def __init__(self) -> None:
        self.wire = bytearray()
        self.seen: list[Seen] = []
        self.script: dict[tuple[str, str], list[Reply]] = {}
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = "fake-k1"
        #: Hook to make the authority lie: mutate the claims before signing.
        self.tamper: Callable[[dict[str, Any]], None] | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # A tee standing in for the socket file (typed BufferedIOBase by
                # typeshed), so every byte a client sends is captured.
                self.rfile = _Tee(self.rfile, fake.wire)  # type: ignore[assignment]

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers), body
                )
                with fake._lock:
                    fake.seen.append(seen)
                    queue = fake.script.get((self.command, parts.path))
                    reply = queue.pop(0) if queue else None
                if reply is None:
                    reply = fake.route(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = (
                    reply.raw
                    if reply.raw is not None
                    else (b"" if reply.body is None else json.dumps(reply.body).encode())
                )
                try:
                    self.send_response(reply.status)
                    content_type = "application/json" if reply.raw is None else "text/html"
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeAuthority:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, method: str, path: str, *replies: Reply) -> None:
        self.script.setdefault((method, path), []).extend(replies)

    def jwks(self) -> dict[str, Any]:
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    # -- the tiny authority ---------------------------------------------------------

    def _auth(self, seen: Seen) -> Reply | None:
        if seen.headers.get("Authorization") != f"Bearer {API_KEY}":
            return Reply(401, {"code": "unauthenticated", "message": "missing or invalid API key"})
        return None

    def route(self, seen: Seen) -> Reply:
        path = seen.path
        if path == "/healthz":
            return Reply(200, {"status": "ok"})
        if path == "/.well-known/jwks.json":
            return Reply(200, self.jwks())
        if path.startswith("/api/certificates/") and seen.method == "GET":
            record = self.records.get(path.rsplit("/", 1)[1])
            if record is None:
                return Reply(404, {"code": "not_found", "message": "no such certificate"})
            return Reply(200, record)
        denied = self._auth(seen)
        if denied:
            return denied
        body = json.loads(seen.body or b"{}")
        if path == "/api/generate":
            return self._generate(body)
        if path == "/api/generate-certificate":
            return self._certificate(body)
        if path.endswith("/revoke"):
            cert_id = path.split("/")[3]
            record = self.records.get(cert_id)
            if record is None:
                return Reply(404, {"code": "not_found", "message": "no such certificate"})
            record.update(
                status="revoked",
                revoked_at="2026-11-22T03:00:00Z",
                revocation_reason=body["reason"],
            )
            return Reply(200, record)
        if path == "/api/audit":
            items = list(self.records.values())
            return Reply(
                200,
                {"items": items, "page": 1, "page_size": 50, "total": len(items), "anomalies": []},
            )
        return Reply(404, {"code": "not_found", "message": f"no route {path}"})

    def _generate(self, body: dict[str, Any]) -> Reply:
        if "password" in body:
            return Reply(400, {"code": "invalid_request", "message": "passwords are refused"})
        try:
            params = GenerationParameters.from_dict(body["parameters"])
            preset = check_preset(body["compliance_standard"], params)
        except InvalidParameters as exc:
            return Reply(exc.http_status, exc.to_dict())
        report = entropy_report(params)
        with self._lock:
            self._counter += 1
            sid = f"sess-{self._counter}-{'x' * 40}"
        self.sessions[sid] = {
            "preset": preset.id,
            "params": params,
            "source": body.get("entropy_source") or EntropySource().to_dict(),
        }
        return Reply(
            200,
            {
                "generation_session_id": sid,
                "expires_in": 60,
                "compliance_standard": preset.id,
                "standards_met": standards_met(params),
                "entropy_bits": report.bits,
                "naive_entropy_bits": report.naive_bits,
                "parameters": params.to_dict(),
                "mapping_version": MAPPING_VERSION,
            },
        )

    def _certificate(self, body: dict[str, Any]) -> Reply:
        session = self.sessions.pop(body.get("generation_session_id", ""), None)
        if session is None:
            return Reply(409, {"code": "session_already_used", "message": "session was used"})
        params: GenerationParameters = session["params"]
        report = entropy_report(params)
        with self._lock:
            self._counter += 1
            cert_id = f"pg_fake{self._counter}"
        now = datetime.now(UTC).replace(microsecond=0)
        claims = CertificateClaims.build(
            issuer=self.url,
            subject="user-1",
            cert_id=cert_id,
            compliance_standard=session["preset"],
            standards_met=standards_met(params),
            entropy_bits=report.bits,
            naive_entropy_bits=report.naive_bits,
            parameters=params.to_dict(),
            entropy_source=session["source"],
            mapping_version=MAPPING_VERSION,
            issued_at=now,
            credential_commitment=body.get("credential_commitment"),
            target=Target.from_dict(body["target"]) if body.get("target") else None,
            label=body.get("label"),
        ).to_payload()
        if self.tamper:
            self.tamper(claims)
        token = jwt.encode(claims, self.private, algorithm="ES256", headers={"kid": self.kid})
        issued = {
            "cert_id": cert_id,
            "cert_url": f"{self.url}/cert/{cert_id}",
            "token": token,
            "compliance_standard": claims["compliance_standard"],
            "standards_met": claims["standards_met"],
            "entropy_bits": claims["entropy_bits"],
            "issued_at": datetime.fromtimestamp(claims["iat"], UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "expires_at": datetime.fromtimestamp(claims["exp"], UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        self.records[cert_id] = {
            **issued,
            "status": "valid",
            "revoked_at": None,
            "revocation_reason": None,
            "parameters": claims["parameters"],
            "entropy_source": claims["entropy_source"],
            "label": claims.get("label"),
            "target": claims.get("target"),
            "kid": self.kid,
        }
        return Reply(201, issued)


@pytest.fixture
def fake() -> Iterator[FakeAuthority]:
    with FakeAuthority() as server:
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(fake: FakeAuthority, **options: Any) -> tuple[AuthorityClient, Sleeps]:
    sleeps = Sleeps()
    options.setdefault("timeout", 5.0)
    return AuthorityClient(fake.url, API_KEY, sleep=sleeps, **options), sleeps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_503_is_retried_with_exponential_backoff(fake: FakeAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(503), Reply(503))
    client, sleeps = make_client(fake, retries=3, backoff=0.1)
    assert client.health() == {"status": "ok"}
    assert len(fake.requests_to("/healthz")) == 3
    assert len(sleeps) == 2
    # Jittered between 50% and 100% of backoff * 2**attempt.
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2


def test_503_retries_really_wait(fake: FakeAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(503), Reply(503))
    client = AuthorityClient(fake.url, retries=2, backoff=0.1)
    start = time.monotonic()
    assert client.health()["status"] == "ok"
    assert time.monotonic() - start >= 0.05 + 0.1


def test_503_after_all_retries_is_authority_unavailable(fake: FakeAuthority) -> None:
    fake.queue("GET", "/healthz", *[Reply(503, raw=b"<html>busy</html>")] * 3)
    client, _ = make_client(fake, retries=2, backoff=0)
    with pytest.raises(AuthorityUnavailable) as info:
        client.health()
    assert len(fake.requests_to("/healthz")) == 3
    assert fake.url in info.value.message and "3 attempt" in info.value.message
    assert "\n" not in str(info.value)


def test_503_with_a_code_maps_to_that_code(fake: FakeAuthority) -> None:
    body = {"code": "authority_unavailable", "message": "database is down"}
    fake.queue("GET", "/healthz", *[Reply(503, body)] * 2)
    client, _ = make_client(fake, retries=1, backoff=0)
    with pytest.raises(AuthorityUnavailable, match="database is down"):
        client.health()


def test_429_honours_retry_after(fake: FakeAuthority) -> None:
    limited = {"code": "rate_limited", "message": "slow down"}
    fake.queue("GET", "/healthz", Reply(429, limited, {"Retry-After": "2"}))
    client, sleeps = make_client(fake)
    assert client.health()["status"] == "ok"
    assert sleeps == [2.0]


def test_429_retry_after_as_http_date(fake: FakeAuthority) -> None:
    import email.utils

    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    fake.queue("GET", "/healthz", Reply(429, None, {"Retry-After": when}))
    client, sleeps = make_client(fake)
    client.health()
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.5


def test_429_with_a_long_retry_after_raises_at_once(fake: FakeAuthority) -> None:
    limited = {"code": "rate_limited", "message": "10 certificates per hour"}
    fake.queue("POST", "/api/generate", Reply(429, limited, {"Retry-After": "3600"}))
    client, sleeps = make_client(fake, max_retry_after=30)
    with pytest.raises(RateLimited) as info:
        client.start_generation("soc2", GenerationParameters.for_preset("soc2"))
    assert info.value.retry_after == 3600.0
    assert info.value.message == "10 certificates per hour"
    assert sleeps == [] and len(fake.requests_to("/api/generate")) == 1


def test_429_after_all_retries_is_rate_limited(fake: FakeAuthority) -> None:
    fake.queue("GET", "/healthz", *[Reply(429, None, {"Retry-After": "1"})] * 3)
    client, sleeps = make_client(fake, retries=2)
    with pytest.raises(RateLimited) as info:
        client.health()
    assert info.value.retry_after == 1.0 and sleeps == [1.0, 1.0]


def test_connection_refused_is_authority_unavailable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    client = AuthorityClient(url, API_KEY, retries=2, backoff=0.01, sleep=sleeps)
    with pytest.raises(AuthorityUnavailable) as info:
        client.jwks()
    message = str(info.value)
    assert url in message and "3 attempt" in message
    assert API_KEY not in message and API_KEY not in repr(info.value)
    assert "\n" not in message and len(sleeps) == 2
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_read_timeout_is_retried_for_idempotent_calls_only(fake: FakeAuthority) -> None:
    fake.queue("GET", "/healthz", Reply(200, {"status": "ok"}, delay=1.0))
    client, _ = make_client(fake, timeout=0.3, retries=1, backoff=0)
    assert client.health()["status"] == "ok"
    assert len(fake.requests_to("/healthz")) == 2

    params = GenerationParameters.for_preset("soc2")
    session = client.start_generation("soc2", params)
    fake.queue("POST", "/api/generate-certificate", Reply(201, {}, delay=1.0))
    with pytest.raises(AuthorityUnavailable, match="may or may not have been applied"):
        client.issue_certificate(session.session_id)
    # Re-sending would burn the single-use session: exactly one attempt.
    assert len(fake.requests_to("/api/generate-certificate")) == 1


def test_redirects_are_not_followed(fake: FakeAuthority) -> None:
    with FakeAuthority() as elsewhere:
        fake.queue(
            "GET", "/api/audit", Reply(302, None, {"Location": f"{elsewhere.url}/api/audit"})
        )
        client, _ = make_client(fake)
        with pytest.raises(AuthorityError, match="redirect"):
            client.audit()
        assert elsewhere.seen == [] and API_KEY.encode() not in elsewhere.wire


@pytest.mark.parametrize(
    ("status", "code", "exc"),
    [
        (410, "session_expired", SessionExpired),
        (409, "session_already_used", SessionAlreadyUsed),
        (400, "session_invalid", SessionInvalid),
        (401, "unauthenticated", Unauthenticated),
        (403, "permission_denied", PermissionDenied),
        (404, "not_found", NotFound),
        (422, "preset_not_met", PresetNotMet),
        (400, "invalid_request", InvalidRequest),
    ],
)
def test_error_bodies_map_to_core_exceptions(
    fake: FakeAuthority, status: int, code: str, exc: type[Exception]
) -> None:
    fake.queue("POST", "/api/generate-certificate", Reply(status, {"code": code, "message": "m!"}))
    client, _ = make_client(fake)
    with pytest.raises(exc) as info:
        client.issue_certificate("sess-1")
    err = info.value
    assert type(err) is exc and isinstance(err, PassgeniError)
    assert err.code == code and err.message == "m!"


def test_rate_limited_body_carries_retry_after(fake: FakeAuthority) -> None:
    body = {"code": "rate_limited", "message": "burst"}
    fake.queue("GET", "/api/audit", *[Reply(429, body, {"Retry-After": "7"})] * 2)
    client, _ = make_client(fake, retries=1, max_retry_after=5)
    with pytest.raises(RateLimited) as info:
        client.audit()
    assert info.value.retry_after == 7.0


def test_unknown_code_keeps_the_code_and_plain_errors_map_by_status(fake: FakeAuthority) -> None:
    fake.queue(
        "GET", "/api/audit", Reply(418, {"code": "teapot_mode", "message": "short and stout"})
    )
    fake.queue("GET", "/api/audit", Reply(401, raw=b"<h1>Unauthorized</h1>"))
    fake.queue("GET", "/api/audit", Reply(404, raw=b"nope"))
    client, _ = make_client(fake)
    with pytest.raises(AuthorityError) as info:
        client.audit()
    assert info.value.code == "teapot_mode" and info.value.message == "short and stout"
    with pytest.raises(Unauthenticated, match="HTTP 401"):
        client.audit()
    with pytest.raises(NotFound, match="HTTP 404"):
        client.audit()


def test_server_messages_never_echo_the_api_key(fake: FakeAuthority) -> None:
    body = {"code": "unauthenticated", "message": f"key {API_KEY} is revoked"}
    fake.queue("GET", "/api/audit", Reply(401, body))
    client, _ = make_client(fake)
    with pytest.raises(Unauthenticated) as info:
        client.audit()
    assert API_KEY not in str(info.value) and "***" in str(info.value)


def test_missing_api_key_fails_before_sending(fake: FakeAuthority) -> None:
    client = AuthorityClient(fake.url)
    with pytest.raises(Unauthenticated, match="PASSGENI_API_KEY"):
        client.audit()
    assert fake.seen == []
    assert client.health()["status"] == "ok"  # public endpoints need no key


def test_malformed_success_bodies_are_authority_errors(fake: FakeAuthority) -> None:
    fake.queue("POST", "/api/generate-certificate", Reply(201, {"cert_id": "x"}))
    fake.queue("GET", "/healthz", Reply(200, raw=b"ok"))
    client, _ = make_client(fake)
    with pytest.raises(AuthorityError, match="cert_url"):
        client.issue_certificate("s")
    with pytest.raises(AuthorityError, match="non-JSON"):
        client.health()


def test_a_caller_session_with_a_mounted_adapter_is_used_and_left_clean(
    fake: FakeAuthority,
) -> None:
    sent: list[str] = []

    class Counting(requests.adapters.HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            sent.append(str(request.url))
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("http://", Counting())
    with AuthorityClient(fake.url, API_KEY, session=session) as client:
        client.audit()
    assert sent == [f"{fake.url}/api/audit?page=1&page_size=50"]
    assert "Authorization" not in session.headers
    session.get(f"{fake.url}/healthz").raise_for_status()  # not closed by the client


def test_typed_results_and_aware_datetimes(fake: FakeAuthority) -> None:
    client, _ = make_client(fake)
    params = GenerationParameters.for_preset("soc2")
    session = client.start_generation("soc2", params)
    assert session.compliance_standard == "soc2" and session.expires_in == 60
    assert session.session_id not in repr(session)
    assert session.expires_at.tzinfo is not None
    issued = client.issue_certificate(
        session,
        credential_commitment="A" * 43,
        target={"system": "vault", "path": "secret/a#pw"},
        label="db",
    )
    assert isinstance(issued, IssuedCertificate) and issued.cert_id.startswith("pg_")
    assert issued.issued_at.tzinfo is not None and issued.expires_at > issued.issued_at
    record = client.get_certificate(issued.cert_id)
    assert record.status == "valid" and record.target == Target(system="vault", path="secret/a#pw")
    assert record.revoked_at is None and record.reason is None
    revoked = client.revoke(issued.cert_id, "rotated")
    assert revoked.revoked and revoked.reason == "rotated" and revoked.revoked_at is not None
    assert revoked.revoked_at.tzinfo is not None
    page = client.audit(status="revoked", since=datetime(2026, 1, 1, tzinfo=UTC), page_size=10)
    assert page.total == 1 and page.items[0].cert_id == issued.cert_id
    query = fake.requests_to("/api/audit")[-1].query
    assert query == {
        "status": ["revoked"],
        "since": ["2026-01-01T00:00:00Z"],
        "page": ["1"],
        "page_size": ["10"],
    }
    assert list(client.iter_audit()) == list(page.items)
    assert client.jwks().kids == [fake.kid]


def test_local_validation_happens_before_any_request(fake: FakeAuthority) -> None:
    client, _ = make_client(fake)
    with pytest.raises(InvalidParameters):
        client.start_generation("soc2", {"length": 20, "password": "hunter2"})
    with pytest.raises(InvalidRequest):
        client.revoke("pg_1", "")
    # Outside the status Literal on purpose (typed Any, as an untyped caller's
    # value is): the client must refuse it before any request.
    untyped_status: Any = "lost"
    with pytest.raises(InvalidRequest):
        client.audit(status=untyped_status)
    with pytest.raises(InvalidRequest):
        client.get_certificate("")
    assert fake.seen == []


def test_certificate_ids_cannot_escape_the_path(fake: FakeAuthority) -> None:
    client, _ = make_client(fake)
    with pytest.raises(NotFound):
        client.get_certificate("../../healthz?x")
    assert fake.seen[-1].path == "/api/certificates/..%2F..%2Fhealthz%3Fx"


def test_batch_issuance_keeps_order_and_item_errors(
    fake: FakeAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make_client(fake)
    params = GenerationParameters.for_preset("soc2")
    sids = [client.start_generation("soc2", params).session_id for _ in range(3)]

    def batch_route(seen: Seen) -> Reply:
        items = json.loads(seen.body)["items"]
        out: list[dict[str, Any]] = []
        for item in items:
            reply = fake._certificate(item)
            out.append(reply.body if reply.status == 201 else {"error": reply.body})
        return Reply(201, {"certificates": out})

    original = fake.route
    monkeypatch.setattr(
        fake,
        "route",
        lambda seen: (
            batch_route(seen) if seen.path == "/api/generate-certificates" else original(seen)
        ),
    )
    monkeypatch.setattr(client, "max_batch", 2)
    results = client.issue_certificates(
        [CertificateRequest(session_id=s) for s in [sids[0], "bogus", sids[1], sids[2]]]
    )
    assert [type(r) for r in results] == [
        IssuedCertificate,
        SessionAlreadyUsed,
        IssuedCertificate,
        IssuedCertificate,
    ]
    assert len(fake.requests_to("/api/generate-certificates")) == 2  # split at MAX_BATCH


def test_only_api_calls_carry_the_key(fake: FakeAuthority) -> None:
    client, _ = make_client(fake)
    client.health()
    client.jwks()
    client.audit()
    by_path = {s.path: s.headers.get("Authorization") for s in fake.seen}
    assert by_path == {
        "/healthz": None,
        "/.well-known/jwks.json": None,
        "/api/audit": f"Bearer {API_KEY}",
    }


def secret_forms(password: str, binding_key: bytes) -> list[bytes]:
    """Every encoding in which a secret could leak onto the wire."""
    from urllib.parse import quote

    forms = [
        password.encode(),
        json.dumps(password).encode()[1:-1],
        quote(password, safe="").encode(),
        quote(password).encode(),
        binding_key,
        binding_key.hex().encode(),
        base64.b64encode(binding_key),
        base64.urlsafe_b64encode(binding_key).rstrip(b"="),
        base64.b64encode(password.encode()),
    ]
    return [f for f in forms if f]


def test_a_cut_off_certificate_request_is_retried_and_explained(fake: FakeAuthority) -> None:
    fake.queue(
        "POST",
        "/api/generate-certificate",
        Reply(drop=True),
        Reply(409, {"code": "session_already_used", "message": "session was already redeemed"}),
    )
    client, _ = make_client(fake, retries=2, backoff=0)
    with pytest.raises(SessionAlreadyUsed) as info:
        client.issue_certificate("sess-1")
    assert len(fake.requests_to("/api/generate-certificate")) == 2
    assert "may have issued the certificate" in info.value.message


def test_a_session_that_disagrees_is_not_redeemed(
    fake: FakeAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passgeni_core import provision

    original = fake._generate

    def lying(body: dict[str, Any]) -> Reply:
        reply = original(body)
        reply.body["entropy_bits"] += 5
        return reply

    monkeypatch.setattr(fake, "_generate", lying)
    with pytest.raises(AuthorityError, match="not certified"):
        provision(AuthorityClient(fake.url, API_KEY), "soc2")
    assert fake.requests_to("/api/generate-certificate") == []
