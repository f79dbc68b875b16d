"""The transparency log: every issuance and revocation, appended in commit order.

An RFC 9162 Merkle log (hashing, proofs and checkpoints are
``passgeni_core.crypto``'s, the same code the CLI verifies with). See
``docs/transparency-log.md`` for the formats.

**Appending.** A leaf is written in the transaction that stores what it
records: the certificate's row (:func:`append_issued`, from the issuance's
``_store_in``) or the revocation's update (:func:`append_revoked`). Nothing
is answered before that transaction is durable, so no acknowledged
certificate is ever missing from the log, and a rolled-back one is never in
it. In a group commit the leaves are deferred (``_hot.defer``) and the
group's leaves are appended together just before its ``COMMIT``: one
``UPDATE transparency_log SET size = size + n ... RETURNING size`` gives them
the indexes ``size - n .. size - 1``. That row's lock, held to the commit, is
what orders the appends of every process sharing a PostgreSQL database (a
second transaction waits for the first to commit, then sees its size);
on SQLite the write lock orders whole transactions. It is the group's last
lock, so it is held only for the commit itself.

**Reading.** Each process keeps the leaf hashes and every complete subtree
in memory (:class:`~passgeni_core.crypto.MerkleTree`, 64 bytes per leaf)
and reads only the leaves appended since its last look, so a checkpoint or a
proof costs ``O(log n)`` hashes. The log's key (Ed25519, C2SP signed note)
lives in ``authority_meta``, created on first start-up and shared by every
process, like the session secret; its name is the log's origin.
"""

from __future__ import annotations

import base64
import re
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from passgeni_core import InvalidRequest
from passgeni_core.crypto import (
    MerkleTree,
    NoteSigner,
    checkpoint_text,
    issuance_leaf,
    leaf_hash,
    revocation_leaf,
)

from . import _hot, _sql
from ._db import authority_meta, log_leaves, transparency_log
from ._settings import AuthoritySettings
from ._storage import Storage

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "TransparencyLog",
    "add_routes",
    "append_issued",
    "append_revoked",
    "entries_of",
    "entries_of_many",
    "log_signer",
    "origin_for",
]

_LOG = "default"
# The row name in authority_meta, not a secret.
_KEY_ROW = "log_signer_key"
#: Leaves read per query when a process catches up with the log.
_READ_CHUNK = 10_000


def origin_for(settings: AuthoritySettings) -> str:
    """The log's origin line (and key name): the issuer without its scheme, ``/log``."""
    name = re.sub(r"^[a-z][a-z0-9+.-]*://", "", settings.effective_issuer, flags=re.I)
    name = re.sub(r"[\s+]", "_", name).rstrip("/")
    return f"{name or 'passgeni'}/log"


def log_signer(conn: Connection, settings: AuthoritySettings) -> NoteSigner:
    """The log's key, created (with the log's size row) on first start-up, in ``conn``."""
    if (
        conn.execute(select(transparency_log.c.size).where(transparency_log.c.name == _LOG)).first()
        is None
    ):
        conn.execute(insert(transparency_log).values(name=_LOG, size=0))
    row = conn.execute(
        select(authority_meta.c.value).where(authority_meta.c.name == _KEY_ROW)
    ).first()
    if row is not None:
        return NoteSigner.from_key(row[0])
    signer = NoteSigner.generate(origin_for(settings))
    conn.execute(insert(authority_meta).values(name=_KEY_ROW, value=signer.signer_key))
    return signer


def _append(conn: Connection, leaves: list[dict[str, Any]]) -> None:
    """Give ``leaves`` the log's next indexes and store them, in ``conn``'s transaction."""
    row = _hot.execute(conn, _sql.LOG_GROW, {"name": _LOG, "count": len(leaves)}).fetchone()
    if row is None:
        raise RuntimeError("the transparency log has no size row (migration 0008)")
    start = int(row[0]) - len(leaves)
    _hot.executemany(
        conn, _sql.INSERT_LOG_LEAF, [{**leaf, "idx": start + i} for i, leaf in enumerate(leaves)]
    )


def append_issued(conn: Connection, cert_id: str, token: str) -> None:
    """Append the issuance leaf of a certificate stored in ``conn``'s transaction."""
    leaf = {"leaf_hash": leaf_hash(issuance_leaf(token)), "kind": "issuance"}
    _hot.defer(conn, _append, {**leaf, "cert_id": cert_id, "data": None})


def append_revoked(conn: Connection, cert_id: str, revoked_at: datetime, reason: str) -> None:
    """Append the revocation leaf of a certificate revoked in ``conn``'s transaction."""
    data = revocation_leaf(cert_id, revoked_at, reason)
    _hot.defer(
        conn,
        _append,
        {
            "leaf_hash": leaf_hash(data),
            "kind": "revocation",
            "cert_id": cert_id,
            "data": data.decode(),
        },
    )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


class TransparencyLog:
    """One process's view of the log: checkpoints, proofs, a certificate's leaves."""

    def __init__(self, storage: Storage, signer: NoteSigner) -> None:
        self.storage = storage
        self._signer = signer
        self._tree = MerkleTree()
        self._lock = threading.Lock()
        self._checkpoint: tuple[int, str] | None = None

    @property
    def origin(self) -> str:
        return self._signer.verifier.name

    @property
    def verifier_key(self) -> str:
        """The note verifier key of the log (``name+hash+base64``), public."""
        return self._signer.verifier.key

    def size(self) -> int:
        """The size of the log as committed now."""
        rows = self.storage.readers.read(_sql.LOG_SIZE, {"name": _LOG})
        return int(rows[0][0]) if rows else 0

    def _catch_up(self, size: int) -> None:
        """Read the leaves this process has not seen yet, up to ``size`` (lock held)."""
        while len(self._tree) < size:
            start = len(self._tree)
            stop = min(size, start + _READ_CHUNK)
            rows = self.storage.readers.read(_sql.LOG_LEAF_HASHES, {"start": start, "stop": stop})
            for idx, value in rows:
                if int(idx) != len(self._tree):
                    raise RuntimeError(f"the transparency log has no leaf {len(self._tree)}")
                self._tree.append(bytes(value))
            if len(self._tree) < stop:
                raise RuntimeError(f"the transparency log has no leaf {len(self._tree)}")

    def checkpoint(self) -> str:
        """The signed checkpoint (C2SP tlog-checkpoint) of the log as committed now."""
        size = self.size()
        with self._lock:
            if self._checkpoint is not None and self._checkpoint[0] == size:
                return self._checkpoint[1]
            self._catch_up(size)
            note = self._signer.sign(checkpoint_text(self.origin, size, self._tree.root(size)))
            self._checkpoint = (size, note)
        return note

    def _tree_of(self, size: int) -> MerkleTree:
        current = self.size()
        if size > current:
            raise InvalidRequest(f"the log has {current} leaves, not {size}")
        self._catch_up(size)
        return self._tree

    def inclusion_proof(self, index: int, size: int) -> list[str]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves, base64."""
        if not 0 <= index < size:
            raise InvalidRequest(f"leaf {index} is not in a tree of {size} leaves")
        with self._lock:
            return _b64(self._tree_of(size).inclusion_proof(index, size))

    def consistency_proof(self, old: int, new: int) -> list[str]:
        """The proof that the tree of ``old`` leaves is a prefix of the one of ``new``."""
        if not 0 <= old <= new:
            raise InvalidRequest(f"from ({old}) must be between 0 and to ({new})")
        with self._lock:
            return _b64(self._tree_of(new).consistency_proof(old, new))


def entries_of(conn: Connection, cert_id: str) -> dict[str, int]:
    """A certificate's leaves, by kind (``issuance``, ``revocation``), in ``conn``."""
    return entries_of_many(conn, [cert_id]).get(cert_id, {})


def entries_of_many(conn: Connection, cert_ids: list[str]) -> dict[str, dict[str, int]]:
    """:func:`entries_of` for several certificates (a page of the audit), one query."""
    out: dict[str, dict[str, int]] = {}
    if not cert_ids:
        return out
    rows = conn.execute(
        select(log_leaves.c.cert_id, log_leaves.c.idx, log_leaves.c.kind)
        .where(log_leaves.c.cert_id.in_(cert_ids))
        .order_by(log_leaves.c.idx)
    )
    for cert_id, idx, kind in rows:
        out.setdefault(str(cert_id), {}).setdefault(str(kind), int(idx))
    return out


def add_routes(app: FastAPI, log: TransparencyLog) -> None:
    """Register the log's public routes on ``app`` (a FastAPI app)."""
    from fastapi import Query
    from fastapi.responses import PlainTextResponse, Response

    from passgeni_core.client import LogProofBody

    from ._issuance_http import dumps

    # Plain defaults rather than Annotated aliases (see _status.add_routes).
    def _proof(hashes: list[str]) -> Response:
        return Response(
            dumps(LogProofBody(hashes=hashes)),
            media_type="application/json",
            headers={"Cache-Control": "max-age=3600"},  # a proof never changes
        )

    @app.get("/log/checkpoint", tags=["public"], response_model=None)
    def log_checkpoint() -> Response:
        """The log's latest checkpoint: a C2SP signed note (``text/plain``)."""
        return PlainTextResponse(log.checkpoint(), headers={"Cache-Control": "no-store"})

    @app.get("/.well-known/log-key", tags=["public"], response_model=None)
    def log_key() -> Response:
        """The log's note verifier key (``name+hash+base64``), to verify checkpoints."""
        return PlainTextResponse(log.verifier_key + "\n", headers={"Cache-Control": "max-age=60"})

    @app.get("/log/proof/inclusion/{index}", tags=["public"], response_model=None)
    def log_inclusion(
        index: int,
        size: int = Query(..., ge=1, le=2**62),
    ) -> Response:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        return _proof(log.inclusion_proof(index, size))

    @app.get("/log/proof/consistency", tags=["public"], response_model=None)
    def log_consistency(
        old: int = Query(..., alias="from", ge=0, le=2**62),
        new: int = Query(..., alias="to", ge=0, le=2**62),
    ) -> Response:
        """The proof that the tree of ``from`` leaves is a prefix of the one of ``to``."""
        return _proof(log.consistency_proof(old, new))
