"""Bulk rotation's batch pipeline (``rotate_many``) on real servers, with injected failures.

OpenBao (Vault KV v2), moto (Secrets Manager) and the real authority. The
stores are the real backends; a thin wrapper injects faults in chosen calls
(a write refused, a write whose answer is lost after it landed, a metadata
write refused, a concurrent writer that makes OpenBao's check-and-set fail
for real, an interrupt between two batches). What is checked is what the
write order promises: every stored credential carries its certificate
references and verifies; a certificate whose credential was not stored is
revoked (``not stored``); a rotation that failed leaves the previous
credential current and its certificate valid; a re-run finishes the job
without certifying again what is already done; requests to the authority are
batched (no per-credential ``/api/generate`` or ``/api/generate-certificate``).
No timing is asserted. The wrapper, the counting session and the inventory
are in ``bulk.py``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from typing import cast

import hvac.exceptions
import pytest

from passgeni_core import (
    AuthorityClient,
    GenerationParameters,
    SecretStore,
    StoreUnavailable,
    StoreURI,
    parse_store_uri,
)
from passgeni_core.crypto import b64url_decode, b64url_encode
from passgeni_core.workflows import RotationResult
from tests.integration.vault_plugin_helper.bulk import (
    CountingSession,
    Faulty,
    Stores,
    assert_stored_and_valid,
    certificates_for,
    inventory,
    run,
    vault_value,
)
from tests.integration.vault_plugin_helper.fixtures import Authority, set_aws_env
from tests.support import MotoServer, OpenBaoServer
from tests.support.proofs import vault_proof

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("vault_env")]


@pytest.fixture
def counting(authority: Authority) -> Iterator[tuple[AuthorityClient, CountingSession]]:
    session = CountingSession()
    client = AuthorityClient(authority.url, authority.api_key, session=session)
    client.jwks()
    session.calls.clear()
    yield client, session
    session.close()


# --- tests ------------------------------------------------------------------------------------


def test_batches_store_everything_certified_and_rerun_changes_nothing(
    counting: tuple[AuthorityClient, CountingSession],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    uid: str,
) -> None:
    set_aws_env(monkeypatch, moto_server)
    client, session = counting
    entries = inventory(uid, vault=23, aws=3)
    results = run(client, entries, Stores(), chunk_size=8, concurrency=4)
    assert all(isinstance(r, RotationResult) and r.status == "created" for r in results), results
    ok = [r for r in results if isinstance(r, RotationResult)]
    for r in ok:
        assert r.cert_id and r.keeper == "e1" and r.version is not None
        assert_stored_and_valid(client, r.uri, r.cert_id)
    # Batched: no per-credential generation or issuance requests; a few batches only.
    assert session.calls["/api/generate"] == 0
    assert session.calls["/api/generate-certificate"] == 0
    batches = session.calls["/api/generate-certificates"]
    assert 1 <= batches <= 8  # 27 credentials in ramped chunks of at most 8
    assert session.calls["/api/generate-batch"] <= 2 * batches  # one per preset in a chunk
    assert session.calls["revoke"] == 0

    # Same epoch again: everything is kept, nothing is certified.
    session.calls.clear()
    again = run(client, entries, Stores(), chunk_size=8, concurrency=4)
    assert [r.status for r in again if isinstance(r, RotationResult)] == ["unchanged"] * len(
        entries
    )
    assert session.calls["/api/generate-batch"] == 0
    assert session.calls["/api/generate-certificates"] == 0

    # A new epoch rotates all of them and revokes every previous certificate.
    rotated = run(client, inventory(uid, 23, 3, epoch="e2"), Stores(), chunk_size=8)
    assert all(isinstance(r, RotationResult) and r.status == "rotated" for r in rotated)
    for old, new in zip(ok, rotated, strict=True):
        assert isinstance(new, RotationResult) and new.previous_cert_id == old.cert_id
        assert new.cert_id is not None
        assert_stored_and_valid(client, new.uri, new.cert_id)
        record = client.get_certificate(old.cert_id or "")
        assert record.status == "revoked" and record.revocation_reason == "rotated"


def test_injected_failures_in_the_middle_of_a_batch_then_rerun_completes(
    counting: tuple[AuthorityClient, CountingSession],
    openbao: OpenBaoServer,
    uid: str,
) -> None:
    client, session = counting
    entries = inventory(uid, vault=12)
    uris = [str(e.destination) for e in entries]
    refused, lost, no_meta, raced = uris[3], uris[5], uris[6], uris[9]
    hv = openbao.hvac_client()

    def someone_else_writes(uri: StoreURI) -> None:
        hv.secrets.kv.v2.create_or_update_secret(
            path="/".join(uri.parts[1:]), mount_point="secret", secret={"password": "theirs"}
        )

    def faulty(store: SecretStore) -> SecretStore:
        # Faulty delegates everything else to the real store (__getattr__).
        wrapped = cast(
            SecretStore,
            Faulty(
                store,
                refuse_write=[refused],
                lose_answer=[lost],
                refuse_metadata=[no_meta],
                concurrent_writer=someone_else_writes,
                concurrent_on=[raced],
            ),
        )
        return wrapped

    results = run(client, entries, Stores(faulty), chunk_size=4, concurrency=3)
    by_uri = dict(zip(uris, results, strict=True))

    # The refused write: not stored, its certificate revoked, the error says so.
    error = by_uri[refused]
    assert isinstance(error, StoreUnavailable)
    assert "not stored" in error.message and "was revoked" in error.message
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault_value(openbao, f"bulk/{uid}/v3")
    [cert] = certificates_for(client, f"secret/bulk/{uid}/v3#password")
    assert cert.status == "revoked" and cert.revocation_reason == "not stored"

    # The concurrent writer: OpenBao's check-and-set refused ours; theirs is intact.
    from passgeni_core import StoreConflict

    assert isinstance(by_uri[raced], StoreConflict)
    assert vault_value(openbao, f"bulk/{uid}/v9") == {"password": "theirs"}
    [cert] = certificates_for(client, f"secret/bulk/{uid}/v9#password")
    assert cert.status == "revoked" and cert.revocation_reason == "not stored"

    # The lost answer: the write had landed, so it counts as stored.
    landed = by_uri[lost]
    assert isinstance(landed, RotationResult) and landed.status == "created"
    assert landed.cert_id is not None
    assert_stored_and_valid(client, landed.uri, landed.cert_id)

    # The refused metadata: the credential is stored with its references in the proof record.
    meta_error = by_uri[no_meta]
    assert isinstance(meta_error, StoreUnavailable) and "is stored" in meta_error.message
    value = vault_value(openbao, f"bulk/{uid}/v6")
    [meta_cert] = certificates_for(client, f"secret/bulk/{uid}/v6#password")
    assert set(value) == {"password"}
    assert vault_proof(openbao.hvac_client(), f"bulk/{uid}/v6")["cert_id"] == meta_cert.cert_id
    assert meta_cert.status == "valid"

    # Everything else in the same batches was stored normally.
    for uri in uris:
        if uri in (refused, raced, no_meta):
            continue
        r = by_uri[uri]
        assert isinstance(r, RotationResult) and r.status == "created", r
        assert r.cert_id is not None
        assert_stored_and_valid(client, r.uri, r.cert_id)
    issued_first = len(
        [r for r in client.iter_audit() if f"/{uid}" in (r.target.path if r.target else "")]
    )
    assert issued_first == len(uris)

    # The re-run, without faults, completes the job: the refused one is created,
    # the metadata completed, the rest kept; nothing certified twice.
    hv.secrets.kv.v2.delete_metadata_and_all_versions(path=f"bulk/{uid}/v9", mount_point="secret")
    session.calls.clear()
    again = run(client, entries, Stores(), chunk_size=4, concurrency=3)
    status = {
        u: r.status for u, r in zip(uris, again, strict=True) if isinstance(r, RotationResult)
    }
    assert len(status) == len(uris), again
    assert status[refused] == "created" and status[raced] == "created"
    assert status[no_meta] == "repaired"
    assert Counter(status.values()) == {"unchanged": len(uris) - 3, "created": 2, "repaired": 1}
    for r in again:
        assert isinstance(r, RotationResult) and r.cert_id is not None
        assert_stored_and_valid(client, r.uri, r.cert_id)
    # Only the two re-created ones were certified (they are in two different chunks).
    assert session.calls["/api/generate-certificates"] == 2


def test_failed_rotation_keeps_the_previous_credential_current(
    counting: tuple[AuthorityClient, CountingSession],
    openbao: OpenBaoServer,
    uid: str,
) -> None:
    client, _ = counting
    entries = inventory(uid, vault=6)
    first = run(client, entries, Stores(), chunk_size=4)
    assert all(isinstance(r, RotationResult) for r in first)
    victim = str(entries[2].destination)
    before = vault_value(openbao, f"bulk/{uid}/v2")

    def faulty(store: SecretStore) -> SecretStore:
        # Faulty delegates everything else to the real store (__getattr__).
        wrapped = cast(SecretStore, Faulty(store, refuse_write=[victim]))
        return wrapped

    second = run(client, inventory(uid, 6, epoch="e2"), Stores(faulty), chunk_size=4)
    failed = second[2]
    assert isinstance(failed, StoreUnavailable) and "previous credential is unchanged" in str(
        failed
    )
    # Still the previous credential, with a valid certificate.
    assert vault_value(openbao, f"bulk/{uid}/v2") == before
    previous = first[2]
    assert isinstance(previous, RotationResult) and previous.cert_id is not None
    assert client.get_certificate(previous.cert_id).status == "valid"
    assert_stored_and_valid(client, previous.uri, previous.cert_id)
    new_certs = [
        c
        for c in certificates_for(client, f"secret/bulk/{uid}/v2#password")
        if c.cert_id != previous.cert_id
    ]
    assert [(c.status, c.revocation_reason) for c in new_certs] == [("revoked", "not stored")]
    # The others rotated; the resumed run rotates the last one.
    assert sum(isinstance(r, RotationResult) and r.status == "rotated" for r in second) == 6
    third = run(client, inventory(uid, 6, epoch="e2"), Stores(), chunk_size=4)
    assert [r.status for r in third if isinstance(r, RotationResult)].count("rotated") == 1
    assert client.get_certificate(previous.cert_id).revocation_reason == "rotated"


def test_interrupted_run_revokes_certificates_it_will_never_store(
    counting: tuple[AuthorityClient, CountingSession],
    uid: str,
) -> None:
    client, session = counting
    entries = inventory(uid, vault=16)
    second_chunk = {str(e.destination) for e in entries[2:6]}  # chunks ramp up: 2, 4, 8...
    opened = threading.Event()

    def gate(uri: StoreURI) -> None:
        if str(uri) in second_chunk:
            opened.wait(timeout=60)

    def before(method: str, name: str) -> None:
        if name == "/api/generate-certificates" and session.calls[name] == 3:
            opened.set()
            raise KeyboardInterrupt  # Ctrl-C before the third batch is issued

    def faulty(store: SecretStore) -> SecretStore:
        # Faulty delegates everything else to the real store (__getattr__).
        wrapped = cast(SecretStore, Faulty(store, gate=gate))
        return wrapped

    session.before = before
    with pytest.raises(KeyboardInterrupt):
        run(client, entries, Stores(faulty), chunk_size=8, concurrency=1)
    session.before = None
    # Every certificate issued is either referenced by what is stored, or revoked.
    revoked = 0
    stores = Stores()
    for entry in entries:
        certs = certificates_for(client, entry.destination.target_path)
        current = stores(entry.destination).read(entry.destination)
        for cert in certs:
            if (
                current is not None
                and current.refs is not None
                and current.refs.cert_id == cert.cert_id
            ):
                assert cert.status == "valid"
                continue
            assert cert.status == "revoked" and cert.revocation_reason == "not stored"
            revoked += 1
    stores.close()
    assert revoked >= 3  # the second chunk's writes that had not started
    # The re-run finishes everything.
    again = run(client, entries, Stores(), chunk_size=8)
    assert all(isinstance(r, RotationResult) for r in again), again
    for r in again:
        assert isinstance(r, RotationResult) and r.cert_id is not None
        assert_stored_and_valid(client, r.uri, r.cert_id)


def test_interrupt_while_waiting_for_the_last_writes(
    counting: tuple[AuthorityClient, CountingSession],
    uid: str,
) -> None:
    """Ctrl-C once every batch is issued: the queued writes are dropped and revoked."""
    client, session = counting
    entries = inventory(uid, vault=10)
    first = str(entries[0].destination)
    opened, finished = threading.Event(), threading.Event()

    def gate(uri: StoreURI) -> None:
        if str(uri) == first:
            # The only worker is busy here; the main thread waits for the queue to drain.
            os.kill(os.getpid(), signal.SIGINT)
            opened.wait(timeout=60)

    def before(method: str, name: str) -> None:
        if name == "revoke":
            opened.set()

    def done(uri: StoreURI) -> None:
        if str(uri) == first:
            finished.set()

    def faulty(store: SecretStore) -> SecretStore:
        # Faulty delegates everything else to the real store (__getattr__).
        wrapped = cast(SecretStore, Faulty(store, gate=gate, after_metadata=done))
        return wrapped

    session.before = before
    with pytest.raises(KeyboardInterrupt):
        run(client, entries, Stores(faulty), chunk_size=100, concurrency=1)
    assert finished.wait(timeout=60)  # the write that had started completes
    session.before = None
    stores = Stores()
    stored = revoked = 0
    for entry in entries:
        current = stores(entry.destination).read(entry.destination)
        for cert in certificates_for(client, entry.destination.target_path):
            if (
                current is not None
                and current.refs is not None
                and current.refs.cert_id == cert.cert_id
            ):
                assert cert.status == "valid"
                stored += 1
            else:
                assert (cert.status, cert.revocation_reason) == ("revoked", "not stored")
                revoked += 1
    stores.close()
    assert stored == 1 and revoked == len(entries) - 1


def test_plan_absent_lists_folders_and_falls_back_without_list_capability(
    openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch, uid: str
) -> None:
    from vault_plugin_helper.vault import VaultStore

    hv = openbao.hvac_client()
    hv.secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/f/there", mount_point="secret", secret={"x": "1"}
    )
    hv.secrets.kv.v2.update_metadata(  # metadata without any version: not absent either
        path=f"{uid}/f/meta-only", mount_point="secret", custom_metadata={"owner": "b"}
    )
    uris = [
        parse_store_uri(f"vault://secret/{uid}/f/{name}")
        for name in ("there", "meta-only", "new-1", "new-2")
    ] + [parse_store_uri(f"vault://secret/{uid}/lonely/new"), parse_store_uri("vault://secret/x")]
    store = VaultStore()
    plans = store.plan_absent(uris)
    assert plans[0] is None and plans[1] is None  # exist: they need a real read
    for i in (2, 3):
        plan = plans[i]
        assert plan is not None
        assert (plan.current, plan.next_version, plan.precondition) == (None, "1", "0")
        assert plan.uri == uris[i]
        prepared = store.prepare(uris[i])  # exactly what prepare says
        assert (prepared.next_version, prepared.precondition) == ("1", "0")
    assert plans[4] is None and plans[5] is None  # alone in its folder: a read is as cheap
    # A folder that does not exist at all: everything in it is absent.
    gone = [parse_store_uri(f"vault://secret/{uid}/nothing/{n}") for n in ("a", "b")]
    assert all(p is not None for p in store.plan_absent(gone))
    store.close()

    # A token without the "list" capability: no shortcut, prepare does the work.
    policy = f"""
path "secret/data/{uid}/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{uid}/*" {{ capabilities = ["read", "update", "patch"] }}
"""
    hv.sys.create_or_update_policy(name=f"nolist-{uid}", policy=policy)
    token = hv.auth.token.create(policies=[f"nolist-{uid}"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", token)
    limited = VaultStore()
    assert limited.plan_absent(uris[2:4]) == [None, None]
    limited.close()


def test_fast_verifier_refuses_tampered_tokens(authority: Authority) -> None:
    from passgeni_core import BadSignature, InvalidToken, verify_certificate
    from passgeni_core.workflows import CertifyRequest, certify_many

    client = authority.client()
    [result] = certify_many(
        client,
        [CertifyRequest(parameters=GenerationParameters.for_preset("soc2"), preset="soc2")],
    )
    assert not isinstance(result, Exception)
    token = result.token
    keys = client.jwks()
    issuer = client.issuer
    assert verify_certificate(token, keys, issuer=issuer).cert_id == result.cert_id
    head, payload, sig = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["entropy_bits"] = 999
    forged = b64url_encode(json.dumps(claims).encode())
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    for bad in (
        f"{head}.{forged}.{sig}",
        f"{head}.{payload}.{flipped}",
        f"{head}.{payload}.{sig[:-4]}",
        f"{head}.{payload}!.{sig}",
        f"{head}.{payload}.{sig}=",
    ):
        with pytest.raises(InvalidToken):
            verify_certificate(bad, keys, issuer=issuer)
    with pytest.raises(BadSignature):
        verify_certificate(f"{head}.{forged}.{sig}", keys, issuer=issuer)
