"""The authority's transparency log in process: leaves in commit order, checkpoints that
verify with the published key, proofs that match a tree rebuilt from the stored leaves, and
migration 0008 appending the certificates stored before the log existed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import create_engine

from passgeni_authority import AuthorityService, AuthoritySettings, RateLimits
from passgeni_core.crypto import (
    MerkleTree,
    NoteVerifier,
    check_inclusion,
    decode_proof,
    issuance_leaf,
    leaf_hash,
    open_checkpoint,
    revocation_leaf,
)
from tests.support.authority import FakeClock
from tests.support.seeds import issue_in_process
from tests.unit.passgeni_authority.test_storage_and_keys import _migrate


def _service(tmp_path: Path, clock: FakeClock) -> AuthorityService:
    return AuthorityService(
        AuthoritySettings(
            state_dir=tmp_path,
            clock=clock,
            rate_limits=RateLimits.unlimited(),
            public_url="https://passgeni.example.com",
        )
    )


def _leaves(tmp_path: Path) -> list[tuple[int, bytes, str, str, str | None]]:
    with sqlite3.connect(tmp_path / "authority.db") as db:
        return db.execute(
            "SELECT idx, leaf_hash, kind, cert_id, data FROM log_leaves ORDER BY idx"
        ).fetchall()


def _issue_and_revoke(svc: AuthorityService, clock: FakeClock) -> tuple[list[Any], Any]:
    key = svc.create_api_key("alice").key
    issued = []
    for _ in range(5):
        issued.append(issue_in_process(svc, key, ip="127.0.0.1")[1])
        clock.advance(2)  # distinct issuance times: the migration's order is unambiguous
    principal = asyncio.run(svc.authorize(key, ip="127.0.0.1", endpoint="test"))
    record = svc.revoke_certificate(principal, issued[1].cert_id, "leaked in a ticket")
    svc.revoke_certificate(principal, issued[1].cert_id, "again")  # appends nothing
    return issued, record


def test_leaves_checkpoints_and_proofs(tmp_path: Path) -> None:
    clock = FakeClock()
    with _service(tmp_path, clock) as svc:
        issued, revoked = _issue_and_revoke(svc, clock)
        key = NoteVerifier.from_key(svc.log.verifier_key)
        assert key.name == "passgeni.example.com/log" == svc.log.origin
        checkpoint = open_checkpoint(svc.log.checkpoint(), key, origin=key.name)
        leaves = _leaves(tmp_path)
        assert checkpoint.size == len(leaves) == 6
        assert [(kind, cert_id) for _i, _h, kind, cert_id, _d in leaves] == [
            *(("issuance", c.cert_id) for c in issued),
            ("revocation", issued[1].cert_id),
        ]
        tree = MerkleTree(bytes(h) for _i, h, *_rest in leaves)
        assert tree.root() == checkpoint.root
        for cert in issued:
            record = svc.get_certificate(cert.cert_id)
            assert record.log_index is not None
            proof = svc.log.inclusion_proof(record.log_index, checkpoint.size)
            check_inclusion(
                issuance_leaf(cert.token),
                record.log_index,
                checkpoint,
                decode_proof({"hashes": proof}),
            )
        assert revoked.revocation_log_index == 5
        data = revocation_leaf(issued[1].cert_id, revoked.revoked_at, "leaked in a ticket")
        assert leaves[5][4] == data.decode() and bytes(leaves[5][1]) == leaf_hash(data)
        # The same checkpoint while nothing is appended; a new one after.
        assert svc.log.checkpoint() == checkpoint.note
        issue_in_process(svc, svc.create_api_key("bob").key, ip="127.0.0.1")
        assert open_checkpoint(svc.log.checkpoint(), key).size == 7
    # Another process (here: the next service on the same database) signs with the same key.
    with _service(tmp_path, clock) as again:
        assert again.log.verifier_key == key.key
        assert open_checkpoint(again.log.checkpoint(), key).size == 7


def test_migration_0008_appends_the_certificates_stored_before_it(tmp_path: Path) -> None:
    clock = FakeClock()
    with _service(tmp_path, clock) as svc:
        _issue_and_revoke(svc, clock)
    before = _leaves(tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'authority.db'}")
    try:
        _migrate(engine, command.downgrade, "0007")
        with engine.connect() as conn:
            tables = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
        assert "log_leaves" not in tables and "transparency_log" not in tables
        _migrate(engine, command.upgrade, "head")
    finally:
        engine.dispose()
    # Rebuilt from the stored certificates: the same leaves, the same order.
    assert _leaves(tmp_path) == before
    with sqlite3.connect(tmp_path / "authority.db") as db:
        assert db.execute("SELECT size FROM transparency_log").fetchone()[0] == len(before)
