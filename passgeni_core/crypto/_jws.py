"""JWS building blocks: base64url and the parts of a compact JWS read before verifying.

The one base64url of the suite (RFC 7515 section 2: URL-safe alphabet, no
padding). It is the standard library's codec rather than pyjwt's
``jwt.utils``: importing ``jwt`` loads ``cryptography`` too, and the light
paths (validating a Terraform destination, encoding a binding key for a store)
must not pay for that. Signatures are verified by pyjwt (see ``_verify``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from .._errors import MalformedToken
from .._untrusted import loads_untrusted

#: A token's header or payload, decoded: certificates are about 1 KB; 64 KiB is generous.
MAX_TOKEN_PART = 64 * 1024

__all__ = [
    "b64url_decode",
    "b64url_encode",
    "jwk_thumbprint",
    "parse_header",
    "unverified_payload",
]


def b64url_encode(data: bytes) -> str:
    """base64url of ``data`` without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str | bytes) -> bytes:
    """Decode base64url with or without padding.

    Raises:
        ValueError: not base64url (``binascii.Error`` is a ``ValueError``;
            a non-ASCII ``str`` raises ``ValueError`` too).
    """
    if isinstance(data, str):
        data = data.encode("ascii")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of an EC public JWK (the authority's ``kid``)."""
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return b64url_encode(hashlib.sha256(canonical).digest())


#: The order of P-256: an ECDSA signature (r, s) and (r, n - s) both verify.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")


def low_s(signature: bytes) -> bytes:
    """A raw ES256 ``r || s`` signature in low-S form (``s <= n / 2``).

    ECDSA signatures are malleable: ``(r, n - s)`` verifies as well as ``(r, s)``.
    Issuers emit the low-S one and verifiers refuse the other, so that a
    certificate has exactly one token string.
    """
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return r + s.to_bytes(32, "big")


def canonical_segments(token: str) -> tuple[str, str, str]:
    """The three segments of a compact JWS, each canonical base64url.

    Canonical: the URL-safe alphabet without ``=`` padding, and the only
    encoding of its bytes (no set bits past the end), so that one token has one
    spelling.

    Raises:
        MalformedToken: not three segments, or one is not canonical base64url.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("certificate token is not a compact JWS (header.payload.signature)")
    for part in parts:
        if not _SEGMENT.match(part) or len(part) % 4 == 1:
            raise MalformedToken("certificate token is not canonical base64url (no padding)")
        if b64url_encode(b64url_decode(part)) != part:
            raise MalformedToken("certificate token is not canonical base64url")
    return parts[0], parts[1], parts[2]


def parse_header(segment: str) -> dict[str, Any]:
    """The protected header of a compact JWS (its first segment), not verified.

    Parsed here rather than by pyjwt so that every header is seen (and
    refused with its own code) before any library logic acts on it.

    Raises:
        MalformedToken: not base64url of a JSON object.
    """
    try:
        raw = b64url_decode(segment)
    except (ValueError, binascii.Error):
        raise MalformedToken("certificate token header is not valid base64url") from None
    header = loads_untrusted(
        raw, what="certificate token header", max_bytes=MAX_TOKEN_PART, error=MalformedToken
    )
    if not isinstance(header, dict):
        raise MalformedToken("certificate token header is not a JSON object")
    return header


def unverified_payload(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, *not verified*: only to name files and pick times.

    Raises:
        MalformedToken: not a compact JWS with a JSON object payload.
    """
    try:
        raw = b64url_decode(token.strip().split(".")[1])
    except (IndexError, ValueError, binascii.Error):
        raise MalformedToken("not a compact JWS with a base64url payload") from None
    data = loads_untrusted(raw, what="JWS payload", max_bytes=MAX_TOKEN_PART, error=MalformedToken)
    if not isinstance(data, dict):
        raise MalformedToken("the JWS payload is not a JSON object")
    return data
