"""Offline revocation: the IETF OAuth Token Status List format.

A status list is a byte array in which each certificate owns ``bits`` bits at
its index (``status.status_list.idx`` in the certificate); the array is
DEFLATE-compressed (zlib format, RFC 1950), base64url-encoded and carried in a
signed JWT (``typ: statuslist+jwt``) whose ``sub`` is the list's URI. Bit
order follows the draft: index ``i`` lives in byte ``i * bits // 8`` starting
at bit ``(i * bits) % 8``, least significant bit first.

Values: 0 valid, 1 invalid (revoked), 2 suspended. A verifier caches the list
and checks revocation with no network: ``passgeni verify --status-list FILE``.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._errors import (
    CertificateExpired,
    CertificateRevoked,
    InvalidRequest,
    MalformedToken,
    WrongIssuer,
)
from ._jws import b64url_decode, b64url_encode, parse_header
from ._verify import JWKS, Certificate, verify_jws

__all__ = [
    "STATUS_INVALID",
    "STATUS_LIST_TYP",
    "STATUS_SUSPENDED",
    "STATUS_VALID",
    "StatusList",
    "check_revocation",
    "verify_status_list",
]

STATUS_VALID = 0
STATUS_INVALID = 1
STATUS_SUSPENDED = 2
STATUS_LIST_TYP = "statuslist+jwt"
_MAX_ENTRIES = 1 << 24


@dataclass
class StatusList:
    """A mutable status list (authority side) or a verified one (verifier side)."""

    bits: int
    data: bytearray
    uri: str = ""
    issued_at: datetime | None = None

    @classmethod
    def empty(cls, size: int, *, bits: int = 1, uri: str = "") -> StatusList:
        if bits not in (1, 2, 4, 8):
            raise ValueError("bits must be 1, 2, 4 or 8")
        if not 0 < size <= _MAX_ENTRIES:
            raise ValueError(f"size must be between 1 and {_MAX_ENTRIES}")
        return cls(bits=bits, data=bytearray((size * bits + 7) // 8), uri=uri)

    @property
    def size(self) -> int:
        return len(self.data) * 8 // self.bits

    def _locate(self, idx: int) -> tuple[int, int, int]:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < self.size:
            raise InvalidRequest(
                f"status list index {idx!r} is outside the list (size {self.size})"
            )
        bitpos = idx * self.bits
        return bitpos // 8, bitpos % 8, (1 << self.bits) - 1

    def get(self, idx: int) -> int:
        byte, shift, mask = self._locate(idx)
        return (self.data[byte] >> shift) & mask

    def set(self, idx: int, status: int) -> None:
        byte, shift, mask = self._locate(idx)
        if not 0 <= status <= mask:
            raise ValueError(f"status {status} does not fit in {self.bits} bits")
        self.data[byte] = (self.data[byte] & ~(mask << shift)) | (status << shift)

    def to_claim(self) -> dict[str, Any]:
        """The ``status_list`` claim: ``{"bits", "lst"}``."""
        return {"bits": self.bits, "lst": b64url_encode(zlib.compress(bytes(self.data), 9))}

    @classmethod
    def from_claim(cls, claim: object, *, uri: str = "") -> StatusList:
        """Parse a ``status_list`` claim.

        Raises:
            MalformedToken: missing fields, bad base64url, bad DEFLATE data.
        """
        if not isinstance(claim, dict):
            raise MalformedToken("status_list claim must be an object")
        bits, lst = claim.get("bits"), claim.get("lst")
        if bits not in (1, 2, 4, 8) or isinstance(bits, bool) or not isinstance(lst, str):
            raise MalformedToken("status_list claim needs bits in (1, 2, 4, 8) and a 'lst' string")
        try:
            compressed = b64url_decode(lst)
            # Bounded decompression: a hostile list can't exhaust memory.
            inflater = zlib.decompressobj()
            raw = inflater.decompress(compressed, _MAX_ENTRIES)
            if not inflater.eof:
                # Output limit reached (or truncated input): never inflate further.
                raise MalformedToken(
                    "status list is larger than the supported maximum or truncated"
                )
        except (binascii.Error, ValueError, zlib.error):
            raise MalformedToken("status list 'lst' is not base64url DEFLATE data") from None
        assert isinstance(bits, int)
        return cls(bits=bits, data=bytearray(raw), uri=uri)


def verify_status_list(
    token: str | bytes,
    jwks: JWKS | Mapping[str, Any] | str | bytes,
    *,
    issuer: str,
    uri: str | None = None,
    now: datetime | None = None,
) -> StatusList:
    """Verify a status list token offline (ES256, trusted JWKS, issuer, ``typ``).

    ``uri``, when given, must equal the token's ``sub`` (the list a certificate
    points at). An expired list (``exp`` in the past) is refused: a stale list
    could hide a revocation.

    Raises:
        The signature errors of :func:`verify_certificate` (MalformedToken,
        AlgorithmNotAllowed, ForbiddenHeader, UnknownKey, BadSignature,
        WrongIssuer), plus MalformedToken for a wrong ``typ``/``sub`` or claim,
        and CertificateExpired (code certificate_expired) for a stale list.
    """
    keys = JWKS.coerce(jwks)
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else str(token)
    header = parse_header(text.strip().split(".", 1)[0])
    if header.get("typ") != STATUS_LIST_TYP:
        raise MalformedToken(f"status list token must have typ {STATUS_LIST_TYP!r}")
    _kid, payload = verify_jws(text, keys)
    if payload.get("iss") != issuer:
        raise WrongIssuer("status list issuer is not the expected one")
    sub = payload.get("sub")
    if not isinstance(sub, str):
        raise MalformedToken("status list token has no 'sub' (its URI)")
    if uri is not None and sub != uri:
        raise MalformedToken(f"status list is {sub!r}, the certificate points at {uri!r}")
    at = (now or datetime.now(UTC)).timestamp()
    exp = payload.get("exp")
    if isinstance(exp, int) and not isinstance(exp, bool) and at >= exp:
        raise CertificateExpired("the status list has expired; fetch a fresh one")
    iat = payload.get("iat")
    issued = (
        datetime.fromtimestamp(iat, UTC)
        if isinstance(iat, int) and not isinstance(iat, bool)
        else None
    )
    result = StatusList.from_claim(payload.get("status_list"), uri=sub)
    result.issued_at = issued
    return result


def check_revocation(certificate: Certificate, status_list: StatusList) -> None:
    """Raise if ``status_list`` marks the certificate revoked or suspended.

    Raises:
        InvalidRequest: the certificate carries no status reference, or points
            at another list.
        CertificateRevoked: the certificate's status is not 0 (valid).
    """
    ref = certificate.claims.status
    if ref is None:
        raise InvalidRequest(f"certificate {certificate.cert_id} carries no status list reference")
    if status_list.uri and ref.uri != status_list.uri:
        raise InvalidRequest(
            f"certificate {certificate.cert_id} points at status list {ref.uri!r}, not {status_list.uri!r}"
        )
    status = status_list.get(ref.idx)
    if status == STATUS_INVALID:
        raise CertificateRevoked(f"certificate {certificate.cert_id} is revoked (status list)")
    if status != STATUS_VALID:
        raise CertificateRevoked(
            f"certificate {certificate.cert_id} is suspended or has status {status} (status list)"
        )
