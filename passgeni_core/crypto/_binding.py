"""Proving the stored credential is the certified one.

Two proofs, one per generation of certificates:

* **Generation proof** (certificates with a ``generation`` claim): the seed
  stored beside the password re-derives it with the certified parameters and the
  authority's nonce (:mod:`passgeni_core.model._derive`), and its commitment is
  the one the certificate carries. This proves the value was *generated* to the
  certified parameters, not chosen (:func:`verify_provenance`).
* **Binding only** (older certificates, ``credential_commitment``):
  ``base64url(HMAC-SHA256(binding_key, password))`` with a 32-byte binding key
  stored beside the password. It proves the value is the certified one, not how
  it was made (:func:`verify_binding`).

Neither the seed nor the binding key is ever sent to the authority; the public
certificate reveals nothing about the password (both are 256-bit secrets).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from .._errors import BindingMismatch, InvalidRequest, ProvenanceMismatch
from ..model import (
    GENERATOR_ID,
    NONCE_BYTES,
    SEED_BYTES,
    CertificateClaims,
    GenerationParameters,
    derive_password,
    new_seed,
    seed_digest,
)
from ._jws import b64url_decode, b64url_encode

__all__ = [
    "BINDING_KEY_BYTES",
    "Credential",
    "credential_commitment",
    "decode_binding_key",
    "decode_nonce",
    "decode_seed",
    "encode_binding_key",
    "encode_seed",
    "new_binding_key",
    "seed_commitment",
    "verify_binding",
    "verify_credential",
    "verify_provenance",
]

BINDING_KEY_BYTES = 32


def new_binding_key() -> bytes:
    """32 bytes from the OS CSPRNG."""
    return secrets.token_bytes(BINDING_KEY_BYTES)


def encode_binding_key(key: bytes) -> str:
    """The storage form of a binding key (base64url, no padding)."""
    return b64url_encode(key)


def _decode32(text: str, what: str, size: int) -> bytes:
    try:
        raw = b64url_decode(text)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidRequest(f"{what} is not valid base64url") from None
    if len(raw) != size:
        raise InvalidRequest(f"{what} must be {size} bytes")
    return raw


def decode_binding_key(text: str) -> bytes:
    """Parse the storage form of a binding key.

    Raises:
        InvalidRequest: not base64url of exactly 32 bytes (the value is not echoed).
    """
    return _decode32(text, "binding key", BINDING_KEY_BYTES)


def encode_seed(seed: bytes) -> str:
    """The storage form of a generation seed (base64url, no padding)."""
    return b64url_encode(seed)


def decode_seed(text: str) -> bytes:
    """Parse the storage form of a seed. Raises InvalidRequest (the value is not echoed)."""
    return _decode32(text, "generation seed", SEED_BYTES)


def decode_nonce(text: str) -> bytes:
    """Parse an authority nonce (base64url of 32 bytes). Raises InvalidRequest."""
    return _decode32(text, "authority nonce", NONCE_BYTES)


def seed_commitment(seed: bytes) -> str:
    """What the authority is sent instead of the seed: base64url of its domain-separated SHA-256."""
    if len(seed) != SEED_BYTES:
        raise InvalidRequest(f"a generation seed must be {SEED_BYTES} bytes")
    return b64url_encode(seed_digest(seed))


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
    claims = _claims_of(certificate)
    expected = claims.credential_commitment
    if not expected:
        raise BindingMismatch(f"certificate {claims.jti} carries no credential commitment")
    actual = credential_commitment(binding_key, password)
    if not hmac.compare_digest(expected.encode("ascii", "replace"), actual.encode("ascii")):
        raise BindingMismatch(
            f"the credential does not match certificate {claims.jti}: it was changed after certification"
        )


def verify_provenance(certificate: CertificateClaims | object, password: str, seed: bytes) -> None:
    """Check that ``password`` is exactly what the certified generation derives from ``seed``.

    The seed must be the committed one, and the certificate's generator, its
    parameters and the authority's nonce must derive ``password`` from it.

    Raises:
        ProvenanceMismatch: no generation claim, another generator, another seed,
            or a password the seed does not derive (changed or chosen by hand).
    """
    claims = _claims_of(certificate)
    generation = claims.generation
    if generation is None:
        raise ProvenanceMismatch(
            f"certificate {claims.jti} carries no generation proof (binding only)"
        )
    if generation.generator != GENERATOR_ID:
        raise ProvenanceMismatch(
            f"certificate {claims.jti} names generator {generation.generator[:64]!r}, "
            f"which this version cannot re-derive (it knows {GENERATOR_ID})"
        )
    if len(seed) != SEED_BYTES or not hmac.compare_digest(
        generation.seed_commitment.encode("ascii"), seed_commitment(seed).encode("ascii")
    ):
        raise ProvenanceMismatch(
            f"the stored seed is not the one committed to in certificate {claims.jti}"
        )
    try:
        parameters = GenerationParameters.from_dict(dict(claims.parameters))
        nonce = decode_nonce(generation.nonce)
    except Exception:
        raise ProvenanceMismatch(
            f"certificate {claims.jti}'s parameters or nonce cannot be re-derived from"
        ) from None
    expected = derive_password(parameters, seed, nonce)
    if not hmac.compare_digest(expected.encode("utf-8"), password.encode("utf-8")):
        raise ProvenanceMismatch(
            f"the stored value is not the password certificate {claims.jti} was generated "
            "as: it was changed or chosen by hand"
        )


def verify_credential(certificate: CertificateClaims | object, credential: Credential) -> str:
    """Check ``credential`` against the certificate by the strongest proof it allows.

    Returns ``"generation"`` (the value was generated as certified, see
    :func:`verify_provenance`) or ``"binding"`` (an older certificate: the value is
    the certified one, how it was made is not provable).

    Raises:
        ProvenanceMismatch: a generation-proof certificate and a seed that does not
            re-derive the value (or no seed).
        BindingMismatch: a binding-only certificate and a value or binding key
            that does not match, or a certificate with neither proof.
    """
    claims = _claims_of(certificate)
    if claims.generation is not None:
        if credential.seed is None:
            raise ProvenanceMismatch(
                f"certificate {claims.jti} proves generation but no seed is stored beside the value"
            )
        verify_provenance(claims, credential.password, credential.seed)
        return "generation"
    if credential.binding_key is None:
        raise BindingMismatch(
            f"certificate {claims.jti} is binding only, but no binding key is stored"
        )
    verify_binding(claims, credential.password, credential.binding_key)
    return "binding"


def _claims_of(certificate: CertificateClaims | object) -> CertificateClaims:
    claims = (
        certificate
        if isinstance(certificate, CertificateClaims)
        else getattr(certificate, "claims", None)
    )
    if not isinstance(claims, CertificateClaims):
        raise TypeError("needs certificate claims or a verified Certificate")
    return claims


@dataclass(frozen=True, repr=False, eq=False)
class Credential:
    """A password and its proof material: the generation ``seed`` (certificates that
    prove generation) or, for older certificates, the ``binding_key``.
    ``repr`` never shows any of them."""

    password: str
    binding_key: bytes | None = None
    seed: bytes | None = None

    def __post_init__(self) -> None:
        if self.binding_key is None and self.seed is None:
            raise InvalidRequest("a credential needs its seed or its binding key")

    @classmethod
    def create(cls, password: str) -> Credential:
        """A binding-only credential (a new binding key) for a password made elsewhere."""
        return cls(password=password, binding_key=new_binding_key())

    @classmethod
    def generated(cls, password: str, seed: bytes) -> Credential:
        """The credential a seed derived (see :func:`verify_provenance`)."""
        return cls(password=password, seed=seed)

    @staticmethod
    def new_seed() -> bytes:
        return new_seed()

    @property
    def commitment(self) -> str:
        """The binding-only commitment (HMAC of the password with the binding key)."""
        if self.binding_key is None:
            raise InvalidRequest("a generated credential has no binding key: use its seed")
        return credential_commitment(self.binding_key, self.password)

    @property
    def seed_commitment(self) -> str:
        if self.seed is None:
            raise InvalidRequest("this credential has no generation seed")
        return seed_commitment(self.seed)

    def __repr__(self) -> str:
        kind = "seed" if self.seed is not None else "binding_key"
        return f"Credential(password='***', {kind}='***')"

    __str__ = __repr__
