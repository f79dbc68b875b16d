"""Offline verification of certificates against the authority's JWKS.

Secure defaults, as pyjwt teaches: the algorithm is pinned to ES256 and never
taken from the token; headers that try to supply or locate a key (``jwk``,
``jku``, ``x5u``, ``x5c``...) are refused outright; the key is chosen only by
``kid`` among the keys the caller trusts. Verification raises on every failure
and never returns False.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from .._errors import (
    AlgorithmNotAllowed,
    BadSignature,
    CertificateExpired,
    CertificateNotYetValid,
    ForbiddenHeader,
    InvalidRequest,
    MalformedToken,
    UnknownKey,
    UnsupportedCertVersion,
    WrongIssuer,
)
from .._untrusted import loads_untrusted
from ..model import CERT_VERSION, CertificateClaims
from ._jws import b64url_decode, canonical_segments, low_s, parse_header

#: A JWK Set: a P-256 key is about 200 bytes; an authority publishes a few.
MAX_JWKS_BYTES = 1024 * 1024

__all__ = [
    "ALGORITHM",
    "JWKS",
    "MAX_TOKEN_BYTES",
    "Certificate",
    "aware_now",
    "verify_certificate",
    "verify_certificate_at_issuance",
]

ALGORITHM = "ES256"
#: A certificate is a few KB; anything far larger is refused before parsing.
MAX_TOKEN_BYTES = 16_384
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64"})


class JWKS:
    """A parsed set of trusted ES256 (P-256) public keys, by ``kid``.

    Keys of other types or curves in the document are ignored: they could
    never verify a certificate.
    """

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        self._keys = dict(keys)

    @classmethod
    def from_dict(cls, document: object) -> JWKS:
        """Parse an RFC 7517 JWK Set.

        Raises:
            InvalidRequest: not a JWK Set, or an EC P-256 key is malformed.
        """
        if isinstance(document, str | bytes):
            document = loads_untrusted(document, what="JWKS", max_bytes=MAX_JWKS_BYTES)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise InvalidRequest("JWKS must be a JSON object with a 'keys' list")
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict):
                raise InvalidRequest("JWKS 'keys' entries must be objects")
            if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
                continue
            if jwk.get("use", "sig") != "sig" or "d" in jwk:
                continue
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidRequest("every JWKS key must have a 'kid'")
            try:
                key = ECAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.InvalidKeyError, ValueError, TypeError):
                raise InvalidRequest(
                    f"JWKS key {kid[:64]!r} is not a valid P-256 public key"
                ) from None
            if not isinstance(key, ec.EllipticCurvePublicKey):
                continue
            keys[kid] = key
        return cls(keys)

    @classmethod
    def coerce(cls, value: JWKS | Mapping[str, Any] | str | bytes) -> JWKS:
        return value if isinstance(value, JWKS) else cls.from_dict(value)

    def get(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def kids(self) -> list[str]:
        return list(self._keys)

    def __repr__(self) -> str:
        return f"JWKS(kids={self.kids!r})"


@dataclass(frozen=True)
class Certificate:
    """A verified certificate."""

    token: str
    claims: CertificateClaims
    kid: str
    #: The instant at which validity was established.
    verified_as_of: datetime
    #: True when verified as of issuance (historical audit), not as of now.
    historical: bool = False

    @property
    def cert_id(self) -> str:
        return self.claims.jti


def aware_now(now: datetime | None) -> datetime:
    """``now`` (the instant a check is made as of), or the current time; never naive.

    Raises:
        ValueError: a naive ``now`` (its time zone would be a guess).
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def verify_jws(token: object, jwks: JWKS) -> tuple[str, dict[str, Any]]:
    """Check shape, algorithm, headers, key id and signature; return (kid, payload)."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("certificate token is not ASCII") from None
    if not isinstance(token, str):
        raise MalformedToken("certificate token must be a string")
    token = token.strip()
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedToken(f"certificate token is larger than {MAX_TOKEN_BYTES} bytes")
    head, body, signature = canonical_segments(token)
    header = parse_header(head)
    alg = header.get("alg")
    if alg != ALGORITHM:
        shown = alg if isinstance(alg, str) else type(alg).__name__
        raise AlgorithmNotAllowed(
            f"certificate algorithm {str(shown)[:20]!r} is not allowed; only ES256"
        )
    forbidden = sorted(_FORBIDDEN_HEADERS.intersection(header))
    if forbidden:
        raise ForbiddenHeader(
            f"certificate header carries {', '.join(forbidden)}: keys are taken only from the trusted JWKS"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownKey("certificate header has no 'kid'")
    key = jwks.get(kid)
    if key is None:
        raise UnknownKey(f"certificate key id {kid[:64]!r} is not in the trusted JWKS")
    # The signature is checked by pyjwt + cryptography with the algorithm pinned
    # here, never read from the token; time claims are checked by the callers
    # against an injectable clock.
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise BadSignature(f"certificate signature does not verify with key {kid[:64]!r}") from None
    except (jwt.PyJWTError, RecursionError):
        raise MalformedToken("certificate token payload is not valid") from None
    raw_signature = b64url_decode(signature)
    if len(raw_signature) != 64 or low_s(raw_signature) != raw_signature:
        # (r, n - s) verifies too: only the low-S twin is a certificate's token.
        raise BadSignature("certificate signature is not in low-S form (a second spelling)")
    # What pyjwt parsed, parsed again strictly: a signed duplicate key is refused.
    strict = loads_untrusted(
        b64url_decode(body), what="certificate payload", max_bytes=MAX_TOKEN_BYTES,
        error=MalformedToken,
    )  # fmt: skip
    if not isinstance(payload, dict) or strict != payload:
        raise MalformedToken("certificate payload is not a JSON object")
    return kid, payload


def _verify_signature(token: object, jwks: JWKS, issuer: str) -> tuple[str, CertificateClaims]:
    kid, payload = verify_jws(token, jwks)
    if payload.get("iss") != issuer:
        got = payload.get("iss")
        shown = got[:100] if isinstance(got, str) else type(got).__name__
        raise WrongIssuer(f"certificate issuer {shown!r} is not the expected {issuer!r}")
    version = payload.get("cert_version")
    if version != CERT_VERSION:
        shown = (
            str(version)[:20] if isinstance(version, str | int | float) else type(version).__name__
        )
        raise UnsupportedCertVersion(
            f"certificate version {shown!r} is not supported (expected {CERT_VERSION})"
        )
    return kid, CertificateClaims.from_payload(payload)


def verify_certificate(
    token: str | bytes,
    jwks: JWKS | Mapping[str, Any] | str | bytes,
    *,
    issuer: str,
    now: datetime | None = None,
    leeway: int = 0,
) -> Certificate:
    """Verify a certificate offline, as of ``now`` (default: the current time).

    Raises:
        MalformedToken: not a compact JWS, bad JSON, oversized, ill-typed claims.
        AlgorithmNotAllowed: ``alg`` is anything but ES256.
        ForbiddenHeader: a ``jwk``/``jku``/``x5u``/``x5c``/``crit``... header.
        UnknownKey: no ``kid``, or a ``kid`` not in ``jwks``.
        BadSignature: the signature does not verify.
        WrongIssuer: ``iss`` differs from ``issuer``.
        UnsupportedCertVersion: ``cert_version`` is not "2.0".
        CertificateNotYetValid: ``now`` is before ``nbf``.
        CertificateExpired: ``now`` is at or after ``exp``.
        InvalidRequest: ``jwks`` is not a valid JWK Set.
    """
    keys = JWKS.coerce(jwks)
    kid, claims = _verify_signature(token, keys, issuer)
    at = aware_now(now)
    ts = at.timestamp()
    # A certificate cannot attest a generation that has not happened yet: an
    # issuance time in the future is refused like a future nbf.
    not_before = max(claims.nbf, claims.iat)
    if ts + leeway < not_before:
        raise CertificateNotYetValid(
            f"certificate {claims.jti} is not valid before {datetime.fromtimestamp(not_before, UTC).isoformat()}"
        )
    if ts - leeway >= claims.exp:
        raise CertificateExpired(
            f"certificate {claims.jti} expired at {claims.expires_at.isoformat()}"
        )
    return Certificate(token=str(token).strip(), claims=claims, kid=kid, verified_as_of=at)


def verify_certificate_at_issuance(
    token: str | bytes,
    jwks: JWKS | Mapping[str, Any] | str | bytes,
    *,
    issuer: str,
) -> Certificate:
    """Verify a historical certificate as of its own issuance time.

    Audits look back more than a year, past ``exp``. This checks the signature,
    issuer and version, and that the certificate was valid when issued
    (``nbf <= iat < exp``); it says nothing about validity today. The result
    has ``historical=True``.

    Raises:
        The same errors as :func:`verify_certificate` except CertificateExpired.
    """
    keys = JWKS.coerce(jwks)
    kid, claims = _verify_signature(token, keys, issuer)
    if not claims.nbf <= claims.iat < claims.exp:
        raise CertificateNotYetValid(f"certificate {claims.jti} was not valid at its issuance time")
    return Certificate(
        token=str(token).strip(),
        claims=claims,
        kid=kid,
        verified_as_of=claims.issued_at,
        historical=True,
    )
