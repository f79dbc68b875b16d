"""A scripted authority over HTTP: a small ``http.server`` on 127.0.0.1.

For what a real authority cannot be made to do on demand: answer 503/429 on
cue, time out, drop a connection, redirect, send arbitrary error bodies, lie
in a certificate. Replies queued with :meth:`ScriptedAuthority.queue` come
first; otherwise a tiny real implementation of the contract answers
(sessions, ES256 certificates, records). It records every byte it receives
(``wire``), which is how the no-secret-on-the-wire property is proven
(:func:`secret_forms` lists the encodings to look for).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from passgeni_core import (
    GENERATOR_ID,
    MAPPING_VERSION,
    AuthorityClient,
    CertificateClaims,
    EntropySource,
    Generation,
    GenerationParameters,
    InvalidParameters,
    Target,
    check_preset,
    entropy_report,
    standards_met,
)
from passgeni_core.crypto import b64url_encode
from passgeni_core.model import LENIENT_RULE, Provenance, decide_fips
from passgeni_core.testing import low_s_token

__all__ = [
    "API_KEY",
    "Reply",
    "ScriptedAuthority",
    "Seen",
    "Sleeps",
    "make_client",
    "secret_forms",
]

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


class ScriptedAuthority:
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
        #: Redeemed sessions: (target, label) asked for and the answer given, so an
        #: identical retry gets the same certificate, as from the real authority.
        self.redeemed: dict[str, tuple[Any, Reply]] = {}
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

    def __enter__(self) -> ScriptedAuthority:
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
        if not body.get("seed_commitment"):
            return Reply(400, {"code": "seed_commitment_required", "message": "no commitment"})
        report = entropy_report(params)
        with self._lock:
            self._counter += 1
            sid = f"sess-{self._counter}-{'x' * 40}"
        nonce = b64url_encode(os.urandom(32))
        self.sessions[sid] = {
            "preset": preset.id,
            "params": params,
            "source": body.get("entropy_source") or EntropySource().to_dict(),
            "generation": Generation(GENERATOR_ID, body["seed_commitment"], nonce),
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
                "authority_nonce": nonce,
                "generator": GENERATOR_ID,
            },
        )

    def _certificate(self, body: dict[str, Any]) -> Reply:
        sid = body.get("generation_session_id", "")
        asked = (body.get("target"), body.get("label"))
        done = self.redeemed.get(sid)
        if done is not None and done[0] == asked:
            return done[1]
        session = self.sessions.pop(sid, None)
        if session is None:
            return Reply(409, {"code": "session_already_used", "message": "session was used"})
        params: GenerationParameters = session["params"]
        report = entropy_report(params)
        # Honest by default, like an embedded authority: FIPS rule lenient-v1 on a host
        # not in FIPS mode, recording what did not hold.
        source = EntropySource.from_dict(session["source"])
        fips = decide_fips(LENIENT_RULE, authority_fips_mode=False, declared=source)
        met = standards_met(params)
        provenance = Provenance.build(
            fips, EntropySource(api="secrets"), fips_listed="fips-140-3" in met
        )
        with self._lock:
            self._counter += 1
            cert_id = f"pg_fake{self._counter}"
        now = datetime.now(UTC).replace(microsecond=0)
        claims = CertificateClaims.build(
            issuer=self.url,
            subject="user-1",
            cert_id=cert_id,
            compliance_standard=session["preset"],
            standards_met=met,
            entropy_bits=report.bits,
            naive_entropy_bits=report.naive_bits,
            parameters=params.to_dict(),
            entropy_source=session["source"],
            provenance=provenance,
            mapping_version=MAPPING_VERSION,
            issued_at=now,
            credential_commitment=body.get("credential_commitment"),
            generation=session["generation"],
            target=Target.from_dict(body["target"]) if body.get("target") else None,
            label=body.get("label"),
        ).to_payload()
        if self.tamper:
            self.tamper(claims)
        token = low_s_token(
            jwt.encode(claims, self.private, algorithm="ES256", headers={"kid": self.kid})
        )
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
        self.redeemed[sid] = (asked, Reply(201, issued))
        return self.redeemed[sid][1]


class Sleeps(list[float]):
    """A client's ``sleep=``: records the back-off delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(fake: ScriptedAuthority, **options: Any) -> tuple[AuthorityClient, Sleeps]:
    sleeps = Sleeps()
    options.setdefault("timeout", 5.0)
    return AuthorityClient(fake.url, API_KEY, sleep=sleeps, **options), sleeps


def secret_forms(password: str, binding_key: bytes | None) -> list[bytes]:
    """Every encoding in which a secret (a password and its seed or binding key) could
    leak onto the wire."""
    assert binding_key, "a credential always has its seed or binding key"
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
