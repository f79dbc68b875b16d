"""Proof records (``passgeni_core.stores._proof``): the seed beside the value, not in it.

The codec with no server, and the judge over the reference backend (``memory://``);
the real stores are checked by the conformance suite in ``tests/integration``.
"""

from __future__ import annotations

import json

import pytest

from passgeni_core import InvalidRequest
from passgeni_core.client import AuthorityClient
from passgeni_core.crypto import Credential
from passgeni_core.stores import (
    CertificateRefs,
    MemoryStore,
    ProofEntry,
    clean_value_fields,
    merge_credential_fields,
    merge_proof,
    needs_proof,
    parse_store_uri,
    pick_proof,
    proof_entries,
    proof_location_option,
    stored_credentials,
)
from passgeni_core.testing import FakeAuthority
from tests.unit.passgeni_core.test_assessment import URI, judge, provision

SEED = bytes(range(32))
REFS = CertificateRefs(cert_id="pg_1", cert_url="https://a.test/cert/pg_1")


def _entry(password: str, cert: str, version: str | None, seed: bytes = SEED) -> ProofEntry:
    return ProofEntry.of(
        Credential.generated(password, seed), cert, f"https://a.test/{cert}", version
    )


def test_an_entry_round_trips_and_never_shows_its_seed() -> None:
    entry = _entry("pw-1", "pg_1", "3")
    back = ProofEntry.from_json(json.loads(json.dumps(entry.to_json())))
    assert back is not None and back.seed == SEED and back.version == "3"
    assert back.matches("pw-1") and not back.matches("pw-2") and not back.matches(None)
    assert "pg_1" in repr(entry) and entry.to_json()["seed"] not in repr(entry)


def test_merge_keeps_the_current_entry_and_drops_orphans() -> None:
    record = merge_proof(None, "password", _entry("one", "pg_1", "1"), keep_cert=None)
    # A write that stopped after the proof record: pg_2 is an orphan, pg_1 current.
    record = merge_proof(record, "password", _entry("two", "pg_2", "2"), keep_cert="pg_1")
    assert [e.cert_id for e in proof_entries(record, "password")] == ["pg_2", "pg_1"]
    # The re-run: pg_1 is still current, the orphan goes.
    record = merge_proof(record, "password", _entry("three", "pg_3", "2"), keep_cert="pg_1")
    assert [e.cert_id for e in proof_entries(record, "password")] == ["pg_3", "pg_1"]
    record = merge_proof(record, "other", _entry("x", "pg_9", "1"), keep_cert=None)
    assert [e.cert_id for e in proof_entries(record, "password")] == ["pg_3", "pg_1"]


def test_the_entry_of_the_value_read_is_picked() -> None:
    entries = [_entry("new", "pg_2", "2"), _entry("old", "pg_1", "1")]
    picked = pick_proof(entries, "old", None)
    assert picked is not None and picked.cert_id == "pg_1"  # by the password's HMAC
    picked = pick_proof(entries, "changed by hand", "pg_1")
    assert picked is not None and picked.cert_id == "pg_1"  # by the metadata: drift
    # An orphan (a write that failed after the proof record) is nobody's proof.
    assert pick_proof(entries, "written by someone else", None) is None
    assert pick_proof([], "x", "pg_1") is None


def test_the_inline_layout_is_read_and_wins() -> None:
    uri = parse_store_uri("memory://a/b#password")
    credential = Credential.generated("pw", SEED)
    inline = merge_credential_fields(None, "password", credential, REFS)
    proof = merge_proof(None, "password", _entry("pw", "pg_other", "1"), keep_cert=None)
    (got,) = stored_credentials(uri, inline, version="1", metadata_refs=None, proof=proof)
    assert got.proof_layout == "inline" and got.refs == REFS and got.seed == SEED
    clean = clean_value_fields(inline, "password", credential)
    assert clean == {"password": "pw"}
    (got,) = stored_credentials(uri, clean, version="2", metadata_refs=None, proof=proof)
    assert got.proof_layout == "sibling" and got.refs is not None
    assert got.refs.cert_id == "pg_other"
    orphan = merge_proof(None, "password", _entry("other", "pg_orphan", "2"), keep_cert=None)
    (got,) = stored_credentials(uri, clean, version="2", metadata_refs=None, proof=orphan)
    assert got.refs is None and got.proof_layout is None  # nobody's proof: uncertified
    assert needs_proof(clean, "password", None) and not needs_proof(inline, "password", None)
    assert not needs_proof(None, "password", REFS)


def test_listing_finds_keys_whose_proof_is_in_the_record() -> None:
    uri = parse_store_uri("memory://a/b")
    value = {"db": "pw", "unrelated": "x"}
    proof = merge_proof(None, "db", _entry("pw", "pg_1", None), keep_cert=None)
    got = stored_credentials(uri, value, version=None, metadata_refs=None, proof=proof)
    assert [str(c.uri) for c in got] == ["memory://a/b#db"]


def test_proof_location_is_sibling_or_inline() -> None:
    assert proof_location_option(None, where="x") == "sibling"
    assert proof_location_option("inline", where="x") == "inline"
    with pytest.raises(InvalidRequest, match="proof_location must be"):
        proof_location_option("elsewhere", where="x")
    with pytest.raises(InvalidRequest):
        MemoryStore(proof_location="nowhere")


def test_the_value_holds_the_password_only(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    store = MemoryStore()
    provision(authority, store)
    secret = store.space.secrets[parse_store_uri(URI).location]
    assert secret.versions[-1] == {"password": "correct horse battery staple"}
    assert list(secret.proof) == ["password.passgeni-proof"]
    assert judge(client, store).status == "valid"


def test_a_proof_record_without_its_binding_key(
    authority: FakeAuthority, client: AuthorityClient
) -> None:
    store = MemoryStore()
    provision(authority, store, target=parse_store_uri(URI).target("memory", None))
    secret = store.space.secrets[parse_store_uri(URI).location]
    entries = json.loads(secret.proof["password.passgeni-proof"])
    for entry in entries:
        entry.pop("binding_key", None)
    secret.proof["password.passgeni-proof"] = json.dumps(entries)
    verdict = judge(client, store)
    assert verdict.status == "drifted" and verdict.reasons == ("binding_missing",)
