"""The authority's transparency log as a client sees it: leaves, proofs, checks.

The log's leaves (``docs/transparency-log.md``):

* an **issuance** leaf's data is the certificate's compact JWT, as ASCII bytes;
* a **revocation** leaf's data is the canonical JSON object
  ``{"cert_id":..,"reason_sha256":..,"revoked_at":..,"type":"revocation"}``:
  keys sorted, no whitespace, ASCII only, ``revoked_at`` RFC 3339 UTC to the
  second (``2026-01-02T03:04:05Z``), ``reason_sha256`` the lowercase hex
  SHA-256 of the reason's UTF-8 bytes (the reason itself is on the
  certificate record, not in the log).

Everything here is offline: given a checkpoint verified with the log's key
and a proof, it decides; it fetches nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .._errors import LogInconsistent, LogProofInvalid
from ._merkle import leaf_hash, verify_consistency, verify_inclusion
from ._note import Checkpoint

__all__ = [
    "MAX_PROOF_HASHES",
    "check_consistency",
    "check_inclusion",
    "decode_proof",
    "issuance_leaf",
    "revocation_leaf",
]

#: A proof of a log of up to 2**64 leaves has at most this many hashes.
MAX_PROOF_HASHES = 128


def issuance_leaf(token: str) -> bytes:
    """The data of a certificate's issuance leaf: its compact JWT as ASCII."""
    try:
        return token.strip().encode("ascii")
    except UnicodeEncodeError:
        raise LogProofInvalid("a certificate token is ASCII") from None


def revocation_leaf(cert_id: str, revoked_at: datetime, reason: str) -> bytes:
    """The data of a revocation leaf (canonical JSON, see the module)."""
    at = revoked_at.replace(tzinfo=UTC) if revoked_at.tzinfo is None else revoked_at
    body = {
        "cert_id": cert_id,
        "reason_sha256": hashlib.sha256(reason.encode("utf-8")).hexdigest(),
        "revoked_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": "revocation",
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def decode_proof(body: Any) -> list[bytes]:
    """The hashes of a proof answer ``{"hashes": [base64, ...]}``.

    Raises:
        LogProofInvalid: not such an object, or a hash is not 32 bytes of base64.
    """
    hashes = body.get("hashes") if isinstance(body, dict) else None
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
        raise LogProofInvalid('a log proof is {"hashes": [base64, ...]}')
    out = []
    for item in hashes:
        try:
            value = base64.b64decode(item, validate=True) if isinstance(item, str) else b""
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != 32:
            raise LogProofInvalid("a log proof hash is 32 bytes of standard base64")
        out.append(value)
    return out


def check_inclusion(
    data: bytes, index: int, checkpoint: Checkpoint, proof: Sequence[bytes]
) -> None:
    """That the leaf with ``data`` is at ``index`` in the tree of ``checkpoint``.

    Raises:
        LogProofInvalid: it is not (or the proof is malformed).
    """
    if not 0 <= index < checkpoint.size:
        raise LogProofInvalid(
            f"leaf {index} is not in the checkpoint's tree of {checkpoint.size} leaves"
        )
    if not verify_inclusion(leaf_hash(data), index, checkpoint.size, proof, checkpoint.root):
        raise LogProofInvalid(
            f"the inclusion proof of leaf {index} does not lead to the root of the "
            f"checkpoint of size {checkpoint.size}"
        )


def check_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """That ``new`` extends ``old`` (same log, nothing of ``old`` rewritten).

    Raises:
        LogInconsistent: it does not: the log's history was rewritten (or forked).
    """
    if old.origin != new.origin:
        raise LogInconsistent(f"the checkpoints are of two logs ({old.origin!r}, {new.origin!r})")
    if new.size < old.size:
        raise LogInconsistent(
            f"the log shrank from {old.size} to {new.size} leaves: its history was rewritten"
        )
    if not verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise LogInconsistent(
            f"the log of {new.size} leaves is not consistent with the checkpoint of "
            f"{old.size} seen before: its history was rewritten"
        )
