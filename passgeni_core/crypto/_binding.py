"""Credential binding: proving the stored credential is the certified one.

``credential_commitment = base64url(HMAC-SHA256(binding_key, password))``.
The binding key is 32 random bytes created next to the password and stored
with it in the secrets manager; it is never sent to the authority. Anyone who
can read the secret can recompute the commitment and compare it with the
certificate; the public certificate reveals nothing about the password (HMAC
with an unknown 256-bit key is a PRF).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .._errors import BindingMismatch, InvalidRequest
from ..model import CertificateClaims
from ._jws import b64url_decode, b64url_encode

__all__ = [
    "BINDING_KEY_BYTES",
    "Credential",
    "credential_commitment",
    "decode_binding_key",
    "encode_binding_key",
    "new_binding_key",
    "verify_binding",
]

BINDING_KEY_BYTES = 32


def new_binding_key() -> bytes:
    """32 bytes from the OS CSPRNG."""
    return secrets.token_bytes(BINDING_KEY_BYTES)


def encode_binding_key(key: bytes) -> str:
    """The storage form of a binding key (base64url, no padding)."""
    return b64url_encode(key)


def decode_binding_key(text: str) -> bytes:
    """Parse the storage form of a binding key.

    Raises:
        InvalidRequest: not base64url of exactly 32 bytes (the value is not echoed).
    """
    try:
        raw = b64url_decode(text)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest("binding key is not valid base64url") from None
    if len(raw) != BINDING_KEY_BYTES:
        raise InvalidRequest(f"binding key must be {BINDING_KEY_BYTES} bytes")
    return raw


def credential_commitment(binding_key: bytes, password: str) -> str:
    """base64url(HMAC-SHA256(binding_key, password)), no padding."""
    if len(binding_key) != BINDING_KEY_BYTES:
        raise InvalidRequest(f"binding key must be {BINDING_KEY_BYTES} bytes")
    return b64url_encode(hmac.new(binding_key, password.encode("utf-8"), hashlib.sha256).digest())


def verify_binding(
    certificate: CertificateClaims | object, password: str, binding_key: bytes
) -> None:
    """Check that ``password`` (with its ``binding_key``) is the certified credential.

    ``certificate`` is the claims or anything with a ``.claims`` attribute
    (a verified :class:`Certificate`). Returns nothing on success.

    Raises:
        BindingMismatch: the certificate has no commitment, or it differs.
    """
    claims = (
        certificate
        if isinstance(certificate, CertificateClaims)
        else getattr(certificate, "claims", None)
    )
    if not isinstance(claims, CertificateClaims):
        raise TypeError("verify_binding needs certificate claims or a verified Certificate")
    expected = claims.credential_commitment
    if not expected:
        raise BindingMismatch(f"certificate {claims.jti} carries no credential commitment")
    actual = credential_commitment(binding_key, password)
    if not hmac.compare_digest(expected.encode("ascii", "replace"), actual.encode("ascii")):
        raise BindingMismatch(
            f"the credential does not match certificate {claims.jti}: it was changed after certification"
        )


@dataclass(frozen=True, repr=False, eq=False)
class Credential:
    """A password and its binding key. ``repr`` never shows either."""

    password: str
    binding_key: bytes

    @classmethod
    def create(cls, password: str) -> Credential:
        return cls(password=password, binding_key=new_binding_key())

    @property
    def commitment(self) -> str:
        return credential_commitment(self.binding_key, self.password)

    def __repr__(self) -> str:
        return "Credential(password='***', binding_key='***')"

    __str__ = __repr__
