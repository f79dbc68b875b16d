"""Generation-session tokens: compact HS256 JWS made and checked by the authority itself.

Why HS256 and not ES256: only the authority ever verifies a session token
(no third party needs a public key for it), an HMAC is ~30x cheaper than an
ECDSA signature on the issuance hot path, and the one secret is created once
and stored in the database (``authority_meta``) so every process sharing the
database accepts the sessions of every other. The token only proves "this
authority issued session ``jti`` to user ``sub`` until ``exp``, for the
re-validated generation request whose digest is ``rq``"; the request itself
is stored once per distinct request, and single use is enforced by the
database (the certificate's unique ``session_jti``), never by the token.
Opening a session therefore writes nothing per session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

import orjson

from passgeni_core import SessionInvalid

__all__ = ["SessionClaims", "SessionCodec"]

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"pgs+jwt"}').rstrip(b"=") + b"."
_TOKEN_RE = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$")
_MAX_TOKEN = 1024
_SAFE_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")


@dataclass(frozen=True)
class SessionClaims:
    jti: str
    sub: str
    iat: int
    exp: int
    #: Digest of the re-validated generation request (``generation_requests``).
    rq: str


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class SessionCodec:
    """Signs and checks session tokens with the shared secret (never shown in reprs)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "SessionCodec(secret='***')"

    def _mac(self, signing_input: bytes) -> bytes:
        return hmac.digest(self._secret, signing_input, hashlib.sha256)

    def encode(self, claims: SessionClaims) -> str:
        """The token for ``claims``.

        Raises:
            ValueError: a claim that would need escaping in JSON (they are
                generated ids, user names checked at creation and digests).
        """
        if not (
            _SAFE_RE.match(claims.jti) and _SAFE_RE.match(claims.sub) and _SAFE_RE.match(claims.rq)
        ):
            raise ValueError("session claims must be plain identifiers")
        # Written directly (the fields need no escaping, checked above):
        # thousands of sessions a second are opened during bulk rotation.
        body = (
            f'{{"jti":"{claims.jti}","sub":"{claims.sub}","iat":{int(claims.iat)},'
            f'"exp":{int(claims.exp)},"rq":"{claims.rq}"}}'
        ).encode("ascii")
        signing_input = _HEADER + _b64(body)
        return (signing_input + b"." + _b64(self._mac(signing_input))).decode("ascii")

    def decode(self, token: object) -> SessionClaims:
        """The claims of a token this authority made (expiry is the caller's check).

        Raises:
            SessionInvalid: not a string, malformed, or the MAC does not verify.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            raise _invalid()
        raw = token.encode("ascii", errors="replace")
        if not _TOKEN_RE.match(raw) or not raw.startswith(_HEADER):
            raise _invalid()
        signing_input, _, mac = raw.rpartition(b".")
        if not hmac.compare_digest(_b64(self._mac(signing_input)), mac):
            raise _invalid()
        body = signing_input[len(_HEADER) :]
        try:
            # orjson: the body is our own (its MAC just verified), so json's
            # strictness about duplicate keys buys nothing; 0.4 us against 2.4.
            data = orjson.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
            claims = SessionClaims(
                jti=str(data["jti"]),
                sub=str(data["sub"]),
                iat=int(data["iat"]),
                exp=int(data["exp"]),
                rq=str(data["rq"]),
            )
        except (ValueError, KeyError, TypeError):
            raise _invalid() from None
        return claims


def _invalid() -> SessionInvalid:
    # Made only when raised: every redeemed session passes through decode().
    return SessionInvalid("generation_session_id was not issued by this authority")
