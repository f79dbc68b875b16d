"""An in-process certificate authority for tests: real ES256 tokens, no server.

:class:`FakeAuthority` signs certificates with a P-256 key it generates and
answers the authority's public read endpoints (``GET /api/certificates/{id}``,
``GET /.well-known/jwks.json``) through a ``requests`` transport adapter, so
that a real :class:`~passgeni_core.client.AuthorityClient` talks to it
without a socket. It is what the judge's tests and the backend conformance
suite use; it is not an authority (no sessions, no API keys, no rate limits).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from ..client import AuthorityClient
from ..crypto import Credential, b64url_decode, b64url_encode, low_s, seed_commitment
from ..model import (
    CERT_VERSION,
    GENERATOR_ID,
    NONCE_BYTES,
    GenerationParameters,
    Target,
    derive_password,
    new_seed,
)

__all__ = ["FakeAuthority", "IssuedToken", "low_s_token"]


def low_s_token(token: str) -> str:
    """``token`` with its ES256 signature in low-S form, as an authority emits it
    (pyjwt leaves ``s`` as the signer made it; verification refuses the high-S twin)."""
    head, body, signature = token.split(".")
    return f"{head}.{body}.{b64url_encode(low_s(b64url_decode(signature)))}"


ISSUER = "https://authority.test"


@dataclass
class IssuedToken:
    """One certificate the fake authority signed, and its current record fields."""

    cert_id: str
    token: str
    payload: dict[str, Any]
    kid: str
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    #: Overrides of the record's JSON (to make the authority answer inconsistently).
    record_overrides: dict[str, Any] = field(default_factory=dict)


def _iso(ts: float | datetime) -> str:
    value = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAuthority:
    """Signs certificates and serves their records and the JWKS, in memory (thread-safe)."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._published: list[str] = []
        self.certificates: dict[str, IssuedToken] = {}
        #: Number of JWKS documents served (a refresh on an unknown key shows here).
        self.jwks_requests = 0
        #: While True every request is answered 503 (an authority that is down).
        self.unavailable = False
        self.kid = self.add_key()

    # -- keys --------------------------------------------------------------------------------

    def add_key(self, *, publish: bool = True) -> str:
        """A new signing key (and its kid); ``publish=False`` keeps it out of the JWKS."""
        kid = f"k-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._keys[kid] = ec.generate_private_key(ec.SECP256R1())
            if publish:
                self._published.append(kid)
        return kid

    def jwks_document(self) -> dict[str, Any]:
        with self._lock:
            keys = [(kid, self._keys[kid]) for kid in self._published]
        out = []
        for kid, key in keys:
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})
        return {"keys": out}

    # -- certificates ------------------------------------------------------------------------

    def issue(
        self,
        credential: Credential | None,
        *,
        target: Target | None = None,
        preset: str = "soc2",
        standards_met: tuple[str, ...] | None = None,
        label: str | None = None,
        issued_at: datetime | None = None,
        lifetime: timedelta = timedelta(days=365),
        kid: str | None = None,
        issuer: str | None = None,
        cert_id: str | None = None,
        jti: str | None = None,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign a certificate for ``credential`` (its commitment) stored at ``target``.

        The keyword arguments make bad certificates on purpose: another
        ``issuer``, a ``jti`` other than the record's ``cert_id``, a
        ``signing_key`` that is not the published one for ``kid``; ``claims``
        adds or replaces payload claims (a ``status`` reference, say).
        """
        at = issued_at or datetime.now(UTC)
        iat = int(at.timestamp())
        record_id = cert_id or f"c-{uuid.uuid4().hex}"
        use_kid = kid or self.kid
        payload: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": "tenant-test",
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(lifetime.total_seconds()),
            "jti": jti or record_id,
            "cert_version": CERT_VERSION,
            "compliance_standard": preset,
            "standards_met": list(standards_met if standards_met is not None else (preset,)),
            "entropy_bits": 128.0,
            "parameters": {"length": 20},
            "entropy_source": {"kind": "os"},
            "mapping_version": "test",
        }
        if credential is not None:
            payload["credential_commitment"] = credential.commitment
        if target is not None:
            payload["target"] = target.to_dict()
        if label is not None:
            payload["label"] = label
        payload.update(claims or {})
        with self._lock:
            key = signing_key or self._keys[use_kid]
        token = low_s_token(jwt.encode(payload, key, algorithm="ES256", headers={"kid": use_kid}))
        issued = IssuedToken(cert_id=record_id, token=token, payload=payload, kid=use_kid)
        with self._lock:
            self.certificates[record_id] = issued
        return issued

    def issue_generated(
        self,
        parameters: GenerationParameters | None = None,
        *,
        preset: str = "soc2",
        **options: Any,
    ) -> tuple[IssuedToken, Credential]:
        """A certificate with a generation proof, and the credential its seed derives.

        As the authority does it: the client's seed commitment and the authority's
        nonce in the ``generation`` claim, the certified parameters in ``parameters``;
        ``options`` are those of :meth:`issue` (``claims`` may replace the proof).
        """
        params = parameters or GenerationParameters.for_preset(preset)
        seed, nonce = new_seed(), os.urandom(NONCE_BYTES)
        password = derive_password(params, seed, nonce)
        proof = {
            "generator": GENERATOR_ID,
            "seed_commitment": seed_commitment(seed),
            "nonce": b64url_encode(nonce),
        }
        claims = {"parameters": params.to_dict(), "generation": proof, **options.pop("claims", {})}
        issued = self.issue(None, preset=preset, claims=claims, **options)
        return issued, Credential.generated(password, seed)

    def revoke(self, cert_id: str, reason: str, *, at: datetime | None = None) -> None:
        with self._lock:
            cert = self.certificates[cert_id]
            cert.revoked_at = at or datetime.now(UTC)
            cert.revocation_reason = reason

    def cert_url(self, cert_id: str) -> str:
        return f"{self.issuer}/cert/{cert_id}"

    def record(self, cert_id: str) -> dict[str, Any] | None:
        """The record ``GET /api/certificates/{id}`` answers (``None``: unknown)."""
        with self._lock:
            cert = self.certificates.get(cert_id)
        if cert is None:
            return None
        p = cert.payload
        status = (
            "revoked"
            if cert.revoked_at is not None
            else "expired"
            if time.time() >= p["exp"]
            else "valid"
        )
        out: dict[str, Any] = {
            "cert_id": cert.cert_id,
            "cert_url": self.cert_url(cert.cert_id),
            "status": status,
            "issued_at": _iso(p["iat"]),
            "expires_at": _iso(p["exp"]),
            "compliance_standard": p["compliance_standard"],
            "standards_met": p["standards_met"],
            "entropy_bits": p["entropy_bits"],
            "token": cert.token,
            "revoked_at": _iso(cert.revoked_at) if cert.revoked_at else None,
            "revocation_reason": cert.revocation_reason,
            "label": p.get("label"),
            "target": p.get("target"),
            "kid": cert.kid,
        }
        out.update(cert.record_overrides)
        return out

    # -- the transport -------------------------------------------------------------------------

    def client(self, **options: Any) -> AuthorityClient:
        """An :class:`AuthorityClient` whose requests this authority answers (no retries)."""
        session = requests.Session()
        session.mount(self.issuer, _Adapter(self))
        options.setdefault("retries", 0)
        return AuthorityClient(self.issuer, session=session, **options)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        """(HTTP status, JSON body) for a request (the public read endpoints only)."""
        if self.unavailable:
            return 503, {"message": "down for the test"}
        if method == "GET" and path == "/.well-known/jwks.json":
            with self._lock:
                self.jwks_requests += 1
            return 200, self.jwks_document()
        prefix = "/api/certificates/"
        if method == "GET" and path.startswith(prefix) and "/" not in path[len(prefix) :]:
            record = self.record(unquote(path[len(prefix) :]))
            if record is None:
                return 404, {"code": "not_found", "message": "no such certificate"}
            return 200, record
        return 404, {"code": "not_found", "message": f"{method} {path} is not served here"}


class _Adapter(BaseAdapter):
    """``requests``' transport adapter interface, answered by a :class:`FakeAuthority`."""

    def __init__(self, authority: FakeAuthority) -> None:
        super().__init__()
        self.authority = authority

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        status, body = self.authority.answer(
            request.method or "GET", urlsplit(request.url or "").path
        )
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release."""
