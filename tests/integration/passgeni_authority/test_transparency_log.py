"""The transparency log over real HTTP: every issuance and revocation is a leaf, the
checkpoint is a signed note under the published key, and the proofs verify with the
core's offline verifier (the one the CLI uses).

Against the real app under uvicorn (the ``authority`` fixture).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from passgeni_core.crypto import (
    Checkpoint,
    NoteVerifier,
    check_consistency,
    check_inclusion,
    decode_proof,
    issuance_leaf,
    leaf_hash,
    open_checkpoint,
    revocation_leaf,
)
from tests.support.authority import Server, Tenant, plain_session


def _get(server: Server, path: str, **params: Any) -> Any:
    response = plain_session().get(f"{server.url}{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response


def _checkpoint(server: Server) -> Checkpoint:
    key = NoteVerifier.from_key(_get(server, "/.well-known/log-key").text)
    response = _get(server, "/log/checkpoint")
    assert response.headers["content-type"].startswith("text/plain")
    return open_checkpoint(response.text, key, origin=key.name)


def _record(server: Server, cert_id: str) -> dict[str, Any]:
    data: dict[str, Any] = _get(server, f"/api/certificates/{cert_id}").json()
    return data


def test_issuances_and_revocations_are_leaves_with_verifiable_proofs(
    authority: Server, make_tenant: Any
) -> None:
    before = _checkpoint(authority)
    tenant: Tenant = make_tenant()
    single = tenant.certificate()
    sids = [tenant.session() for _ in range(3)]
    batch = tenant.post(
        "/api/generate-certificates",
        {"items": [{"generation_session_id": sid} for sid in sids]},
    )
    assert batch.status_code == 201, batch.text
    issued = [single, *batch.json()["certificates"]]
    revoked = tenant.post(f"/api/certificates/{single['cert_id']}/revoke", {"reason": "leaked"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["log"]["revocation_index"] is not None

    after = _checkpoint(authority)
    assert after.origin == before.origin
    assert after.size >= before.size + len(issued) + 1
    proof = decode_proof(
        _get(authority, "/log/proof/consistency", **{"from": before.size, "to": after.size}).json()
    )
    check_consistency(before, after, proof)

    indexes = []
    for cert in issued:
        record = _record(authority, cert["cert_id"])
        index = record["log"]["index"]
        assert before.size <= index < after.size
        indexes.append(index)
        body = _get(authority, f"/log/proof/inclusion/{index}", size=after.size).json()
        assert set(body) == {"hashes"}
        check_inclusion(issuance_leaf(record["token"]), index, after, decode_proof(body))
    assert len(set(indexes)) == len(indexes)

    # The revocation's leaf: the canonical JSON of the id, the time and the reason's digest.
    record = _record(authority, single["cert_id"])
    assert record["status"] == "revoked"
    revocation = record["log"]["revocation_index"]
    assert revocation > record["log"]["index"]
    from datetime import datetime

    data = revocation_leaf(
        single["cert_id"], datetime.fromisoformat(record["revoked_at"]), "leaked"
    )
    body = _get(authority, f"/log/proof/inclusion/{revocation}", size=after.size).json()
    check_inclusion(data, revocation, after, decode_proof(body))

    # Revoking again appends nothing.
    again = tenant.post(f"/api/certificates/{single['cert_id']}/revoke", {"reason": "again"})
    assert again.json()["log"]["revocation_index"] == revocation


def test_the_stored_leaves_are_gapless_and_hash_what_they_record(authority: Server) -> None:
    checkpoint = _checkpoint(authority)
    with sqlite3.connect(authority.db_path) as db:
        leaves = db.execute(
            "SELECT idx, leaf_hash, kind, cert_id, data FROM log_leaves ORDER BY idx"
        ).fetchall()
        tokens = dict(db.execute("SELECT cert_id, token FROM certificates").fetchall())
    assert [row[0] for row in leaves[: checkpoint.size]] == list(range(checkpoint.size))
    for _idx, stored, kind, cert_id, data in leaves:
        if kind == "issuance":
            assert stored == leaf_hash(issuance_leaf(tokens[cert_id]))
        else:
            assert kind == "revocation" and stored == leaf_hash(data.encode())
    # Every stored certificate has its issuance leaf.
    assert {row[3] for row in leaves if row[2] == "issuance"} == set(tokens)


def test_bad_proof_requests_are_one_line_4xx(authority: Server) -> None:
    size = _checkpoint(authority).size
    http = plain_session()
    for path, params in (
        (f"/log/proof/inclusion/{size}", {"size": size}),
        ("/log/proof/inclusion/0", {"size": size + 1000}),
        ("/log/proof/inclusion/-1", {"size": size}),
        ("/log/proof/inclusion/0", {}),
        ("/log/proof/consistency", {"from": 2, "to": 1}),
        ("/log/proof/consistency", {"from": 0, "to": size + 1000}),
        ("/log/proof/consistency", {"from": "x", "to": 1}),
    ):
        response = http.get(f"{authority.url}{path}", params=params, timeout=10)
        assert 400 <= response.status_code < 500, (path, params, response.text)
        assert set(response.json()) == {"code", "message"}


def test_the_certificate_page_shows_its_leaf(authority: Server, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    cert = tenant.certificate()
    index = _record(authority, cert["cert_id"])["log"]["index"]
    page = plain_session().get(cert["cert_url"], headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    assert f"leaf <strong>{index}</strong>" in page.text
    assert f"/log/proof/inclusion/{index}?size=N" in page.text
    assert f"passgeni log verify {cert['cert_id']}" in page.text
