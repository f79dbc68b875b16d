"""The published generator of a certified credential: ``passgeni-shake256-v1``.

Commit-reveal, so that only a machine-generated credential can be certified
and the password never leaves the machine:

1. the client draws a 32-byte ``seed`` from the OS CSPRNG and sends only
   ``seed_commitment = base64url(SHA-256(b"passgeni seed commitment v1\\x00" || seed))``
   with the parameters (``POST /api/generate``);
2. the authority answers with the session and a fresh 32-byte ``nonce`` of its
   own, bound into the session (it signs both into the certificate);
3. the password is the first output of the preset's uniform sampler
   (:meth:`~._generator.Sampler.derive`) on the byte stream
   ``SHAKE-256(b"passgeni generator v1\\x00" || seed || nonce || canonical parameters)``,
   where the canonical parameters are their certificate form as JSON with sorted
   keys, no spaces and ASCII escapes.

Whoever can read the stored credential and its seed re-derives the password and
proves the certificate is for exactly that value. A chosen password cannot be
made to match: the seed was fixed (by its commitment) before the nonce was
known, and SHAKE-256 output cannot be steered. The sampler stays exact on this
path: it is uniform given a uniform stream. Test vectors: ``docs/generator.md``.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from ._entropy_source import EntropySource
from ._generator import GeneratedPassword, _sampler, described
from ._params import GenerationParameters

__all__ = [
    "GENERATOR_ID",
    "NONCE_BYTES",
    "SEED_BYTES",
    "XofStream",
    "canonical_parameters",
    "derive",
    "derive_password",
    "new_seed",
    "seed_digest",
]

#: The versioned id certificates carry; a new derivation gets a new id.
GENERATOR_ID = "passgeni-shake256-v1"
SEED_BYTES = 32
NONCE_BYTES = 32

_COMMITMENT_DOMAIN = b"passgeni seed commitment v1\x00"
_STREAM_DOMAIN = b"passgeni generator v1\x00"


def new_seed() -> bytes:
    """A fresh seed from the OS CSPRNG."""
    return secrets.token_bytes(SEED_BYTES)


def seed_digest(seed: bytes) -> bytes:
    """The 32 bytes a seed commitment encodes (domain-separated SHA-256)."""
    _check(seed, SEED_BYTES, "seed")
    return hashlib.sha256(_COMMITMENT_DOMAIN + seed).digest()


def canonical_parameters(parameters: GenerationParameters) -> bytes:
    """The parameters as the stream hashes them: their certificate form, canonical JSON."""
    return json.dumps(
        parameters.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


class XofStream:
    """The SHAKE-256 output stream of ``data``, read in order.

    SHAKE-256's output of any length is a prefix of a longer one, so the stream
    is squeezed in growing lengths and read as one sequence.
    """

    def __init__(self, data: bytes) -> None:
        self._xof = hashlib.shake_256(data)
        self._out = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._out):
            self._out = self._xof.digest(max(end, 2 * len(self._out), 512))
        chunk = self._out[self._pos : end]
        self._pos = end
        return chunk

    def __repr__(self) -> str:
        return "XofStream(***)"


def derive_password(parameters: GenerationParameters, seed: bytes, nonce: bytes) -> str:
    """The password ``passgeni-shake256-v1`` derives from (seed, nonce, parameters)."""
    _check(seed, SEED_BYTES, "seed")
    _check(nonce, NONCE_BYTES, "nonce")
    stream = XofStream(_STREAM_DOMAIN + seed + nonce + canonical_parameters(parameters))
    return _sampler(parameters).derive(stream.read)


def _check(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        raise ValueError(f"a {what} is {size} bytes")


def derive(
    parameters: GenerationParameters,
    seed: bytes,
    nonce: bytes,
    *,
    entropy_source: EntropySource | None = None,
    fips_strict: bool = False,
) -> GeneratedPassword:
    """:func:`derive_password` with the facts a certificate states (as :func:`generate`)."""
    return described(
        derive_password(parameters, seed, nonce), parameters, entropy_source, fips_strict
    )
