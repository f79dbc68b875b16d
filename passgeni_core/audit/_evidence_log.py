"""The transparency log in an evidence bundle: a checkpoint and every certificate's
inclusion proof, checked offline (see ``docs/transparency-log.md``).

Files (listed in the manifest, so the authority's manifest signature covers them)::

    log/log-key.txt       the log's note verifier key (name+hash+base64)
    log/checkpoint.txt    a signed checkpoint (C2SP tlog-checkpoint)
    log/proofs.json       {"size": N, "proofs": {cert_id: {"index": i, "hashes": [...]}}}

Every certificate of the bundle must be a leaf of the checkpoint's tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import LogProofInvalid, PassgeniError
from .._untrusted import loads_untrusted
from ..crypto import (
    Checkpoint,
    NoteVerifier,
    check_inclusion,
    decode_proof,
    issuance_leaf,
    open_checkpoint,
)

__all__ = ["LOG_CHECKPOINT", "LOG_KEY", "LOG_PROOFS", "check_log", "log_files"]

LOG_KEY = "log/log-key.txt"
LOG_CHECKPOINT = "log/checkpoint.txt"
LOG_PROOFS = "log/proofs.json"


def log_files(log: Mapping[str, Any]) -> dict[str, bytes]:
    """The bundle's log files from ``{"key", "checkpoint", "size", "proofs"}``."""
    import json

    proofs = {"size": int(log["size"]), "proofs": dict(sorted(dict(log["proofs"]).items()))}
    return {
        LOG_KEY: (str(log["key"]).strip() + "\n").encode("ascii"),
        LOG_CHECKPOINT: str(log["checkpoint"]).encode("utf-8"),
        LOG_PROOFS: (json.dumps(proofs, indent=2) + "\n").encode(),
    }


def check_log(
    members: Mapping[str, bytes],
    certificates: Mapping[str, bytes],
    *,
    trusted_key: str | None = None,
) -> tuple[Checkpoint | None, dict[str, str], list[str]]:
    """Check the bundle's log files: the checkpoint, then each certificate's inclusion.

    ``certificates`` maps cert ids to their token files. Returns the checkpoint
    (``None`` when it does not verify), per certificate either ``"leaf N of S"``
    or why it is not shown to be in the log (``"!..."``), and bundle-level problems.
    """
    problems: list[str] = []
    try:
        key = NoteVerifier.from_key(members[LOG_KEY].decode("ascii").strip())
        if trusted_key is not None and NoteVerifier.from_key(trusted_key) != key:
            raise LogProofInvalid(f"{LOG_KEY} is not the trusted log key")
        checkpoint = open_checkpoint(members[LOG_CHECKPOINT], key, origin=key.name)
        doc = loads_untrusted(members[LOG_PROOFS], what=LOG_PROOFS, max_bytes=1 << 26)
        if not isinstance(doc, dict) or doc.get("size") != checkpoint.size:
            raise LogProofInvalid(f"{LOG_PROOFS} is not for the checkpoint's tree size")
        proofs = doc.get("proofs")
        if not isinstance(proofs, dict):
            raise LogProofInvalid(f"{LOG_PROOFS} has no proofs object")
    except (KeyError, UnicodeDecodeError, PassgeniError) as exc:
        detail = exc.message if isinstance(exc, PassgeniError) else "a log file is missing"
        problems.append(f"the transparency log does not verify: {detail}")
        return None, {}, problems
    results: dict[str, str] = {}
    for cert_id, token in certificates.items():
        proof = proofs.get(cert_id)
        try:
            if not isinstance(proof, dict) or not isinstance(proof.get("index"), int):
                raise LogProofInvalid("no inclusion proof in the bundle")
            check_inclusion(
                issuance_leaf(token.decode("ascii").strip()),
                proof["index"],
                checkpoint,
                decode_proof(proof),
            )
            results[cert_id] = f"leaf {proof['index']} of {checkpoint.size}"
        except (PassgeniError, UnicodeDecodeError) as exc:
            results[cert_id] = "!" + (
                exc.message if isinstance(exc, PassgeniError) else "not ASCII"
            )
    return checkpoint, results, problems
