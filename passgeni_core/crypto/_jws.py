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
