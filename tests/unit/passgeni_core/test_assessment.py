"""The one judge (``passgeni_core.workflows.assess``), thoroughly, with no server.

Credentials live in the reference backend (``memory://``); certificates are
real ES256 tokens signed by an in-process :class:`FakeAuthority`, read by a
real ``AuthorityClient`` through a ``requests`` transport adapter.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core import AuthorityUnavailable, InvalidRequest, PassgeniError
from passgeni_core.client import AuthorityClient
from passgeni_core.crypto import JWKS, Credential, StatusList
from passgeni_core.model import EMBEDDED_ISSUER_NOTE, is_embedded_issuer
from passgeni_core.stores import (
    CertificateRefs,
    MemoryStore,
    StoredCredential,
    StoreURI,
    parse_store_uri,
    write_proof,
)
from passgeni_core.testing import FakeAuthority, IssuedToken
from passgeni_core.workflows import FAILING, REASONS, STATUSES, Verdict, assess, keeper_label

URI = "memory://app/db#password"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def provision(
    authority: FakeAuthority,
    store: MemoryStore,
    uri: str = URI,
    *,
    password: str = PASSWORD,
    metadata: bool = True,
    target: Any = "auto",
    **issue: Any,
) -> tuple[IssuedToken, Credential]:
    """Prepare, certify (target = the planned version), write, write the metadata."""
    parsed = parse_store_uri(uri)
    plan = store.prepare(parsed)
    credential = Credential.create(password)
    chosen = parsed.target(store.system, plan.next_version) if target == "auto" else target
    issued = authority.issue(credential, target=chosen, **issue)
    refs = CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=authority.cert_url(issued.cert_id),
        standard=issued.payload["compliance_standard"],
        expires_at=datetime.fromtimestamp(issued.payload["exp"], UTC),
        version=plan.next_version,
    )
    write_proof(store, plan, credential, refs)  # the proof record first
    version = store.write(plan, credential, refs)
    if metadata:
        store.write_metadata(parsed, dataclasses.replace(refs, version=version))
    return issued, credential


def judge(client: AuthorityClient, store: MemoryStore, uri: str = URI, **options: Any) -> Verdict:
    current = store.read(parse_store_uri(uri))
    assert current is not None
    return assess(client, store.system, current, **options)


# --- valid, expiring, below requirement ------------------------------------------------------


def test_a_certified_bound_current_credential_is_valid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store)
    verdict = judge(client, store)
    assert verdict.status == "valid" and verdict.ok and verdict.value_covered
    assert verdict.reasons == () and verdict.detail == ""
    assert verdict.cert_id == issued.cert_id and verdict.store_version == "1"
    assert verdict.certified_version == "1" and verdict.standard == "soc2"
    assert verdict.claims is not None and verdict.claims.jti == issued.cert_id
    assert verdict.certificate is not None and verdict.certificate.kid == authority.kid
    assert verdict.record is not None and verdict.record.cert_url == authority.cert_url(
        issued.cert_id
    )
    assert verdict.refs is not None and verdict.refs.version == "1"
    verdict.raise_for_error()  # nothing to raise


def test_expiring_within_the_window(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, issued_at=datetime.now(UTC) - timedelta(days=350))
    verdict = judge(client, store)
    assert verdict.status == "expiring" and verdict.ok and verdict.value_covered
    assert verdict.reasons == ("expiring",)
    assert verdict.detail.startswith("expires in 1") and verdict.detail.endswith("day(s)")
    assert judge(client, store, expiring_days=5).status == "valid"


def test_below_requirement_when_the_required_standard_is_not_met(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, standards_met=("soc2",))
    verdict = judge(client, store, require="pci-dss")
    assert verdict.status == "below_requirement" and not verdict.ok
    assert verdict.reasons == ("standard_not_met",)
    assert verdict.detail == "meets soc2, not pci-dss"
    assert judge(client, store, require="soc2").status == "valid"


def test_another_preset_is_a_standard_mismatch(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, preset="pci-dss")
    verdict = judge(client, store, preset="soc2")
    assert verdict.status == "below_requirement" and not verdict.value_covered
    assert verdict.reasons == ("standard_mismatch",)
    assert verdict.detail == "certified for pci-dss, not soc2"
    assert judge(client, store, preset="pci-dss").status == "valid"


def test_another_epoch_is_a_keeper_mismatch(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, label=keeper_label("2026-q3", "db"))
    verdict = judge(client, store, keeper="2026-q4")
    assert verdict.status == "below_requirement" and verdict.reasons == ("keeper_mismatch",)
    assert verdict.keeper == "2026-q3"
    assert judge(client, store, keeper="2026-q3").status == "valid"
    assert judge(client, store).status == "valid"  # no keeper asked: any epoch


def test_an_embedded_issuer_is_reported_not_hidden(store: MemoryStore) -> None:
    """A certificate of an embedded, throwaway authority is judged like any other, and
    the verdict's detail (what a scan prints) says what it is."""
    embedded = FakeAuthority()
    with embedded.client(issuer="embedded:0123456789abcdef") as client:
        provision(embedded, store, issuer="embedded:0123456789abcdef")
        verdict = judge(client, store)
        assert verdict.status == "valid" and verdict.reasons == ()
        assert verdict.detail == EMBEDDED_ISSUER_NOTE
        assert verdict.claims is not None and verdict.claims.embedded_issuer
        store.put(parse_store_uri(URI), {"password": "changed by hand"})
        verdict = judge(client, store)
        assert verdict.status == "drifted"
        assert verdict.detail.endswith(f"; {EMBEDDED_ISSUER_NOTE}")


def test_only_embedded_issuers_are_marked() -> None:
    assert is_embedded_issuer("embedded:0123456789abcdef")
    for other in (
        "http://127.0.0.1:8787",
        "https://embedded.example",
        "embedded:",
        "embedded",
        None,
    ):
        assert not is_embedded_issuer(other), other


# --- drifted ---------------------------------------------------------------------------------


def test_a_value_changed_by_hand_is_a_binding_and_version_mismatch(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store)
    store.put(parse_store_uri(URI), {"password": "changed by hand"})
    verdict = judge(client, store)
    assert verdict.status == "drifted" and not verdict.value_covered
    assert verdict.reasons == ("version_mismatch", "binding_mismatch")
    assert verdict.detail == ("the store's current version is 2, the certificate is for version 1")
    assert verdict.certificate is not None  # the signature checked out


def test_a_changed_value_of_the_same_version_is_a_binding_mismatch(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, target=parse_store_uri(URI).target("memory", None))
    store.put(parse_store_uri(URI), {"password": "changed by hand"})
    verdict = judge(client, store)
    assert verdict.reasons == ("binding_mismatch",)
    assert verdict.detail == "the binding check fails: the value changed after certification"


def test_only_the_version_changed(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store)
    store.put(parse_store_uri(URI), {"unrelated": "field"})  # a new version, same password
    verdict = judge(client, store)
    assert verdict.status == "drifted" and verdict.reasons == ("version_mismatch",)


def test_a_missing_binding_key(authority: FakeAuthority, client: AuthorityClient) -> None:
    # The inline layout (credentials stored before proof records): a malformed field.
    store = MemoryStore(proof_location="inline")
    provision(authority, store, target=parse_store_uri(URI).target("memory", None))
    store.put(parse_store_uri(URI), {"password.passgeni-binding-key": "not base64url!"})
    verdict = judge(client, store)
    assert verdict.status == "drifted" and verdict.reasons == ("binding_missing",)
    assert verdict.detail == "no binding key is stored beside the password"


def test_certified_for_another_location(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    elsewhere = parse_store_uri("memory://app/other#password").target("memory", "1")
    provision(authority, store, target=elsewhere)
    verdict = judge(client, store)
    assert verdict.status == "drifted" and verdict.reasons == ("target_mismatch",)
    assert verdict.detail == f"certified for memory:app/other#password, found at {URI}"
    # Another system is a target mismatch too.
    current = store.read(parse_store_uri(URI))
    assert current is not None
    assert assess(client, "vault", current).reasons == ("target_mismatch",)


def test_metadata_lagging_behind_the_value(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    old, _ = provision(authority, store)
    new, _ = provision(authority, store, password="the new one", metadata=False)
    verdict = judge(client, store)
    assert verdict.status == "drifted" and verdict.reasons == ("metadata_lagging",)
    assert verdict.value_covered  # repair the metadata; do not rotate
    assert verdict.detail == (
        f"the metadata names certificate {old.cert_id}, the value {new.cert_id}: "
        "an earlier provisioning stopped half-way; re-run it"
    )
    assert verdict.refs is not None and verdict.refs.cert_id == new.cert_id


def test_a_value_replaced_without_references(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    old, _ = provision(authority, store)
    uri = parse_store_uri(URI)
    current = store.read(uri)
    assert current is not None
    replaced = dataclasses.replace(current, refs=None)
    verdict = assess(client, "memory", replaced)
    assert verdict.status == "drifted" and verdict.reasons == ("value_replaced",)
    assert verdict.cert_id == old.cert_id and verdict.certificate is None


# --- expired, revoked --------------------------------------------------------------------------


def test_expired(authority: FakeAuthority, client: AuthorityClient, store: MemoryStore) -> None:
    issued, _ = provision(authority, store, issued_at=datetime.now(UTC) - timedelta(days=400))
    verdict = judge(client, store)
    assert verdict.status == "expired" and verdict.reasons == ("expired",)
    expires = datetime.fromtimestamp(issued.payload["exp"], UTC)
    assert verdict.detail == f"expired at {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    assert verdict.certificate is not None and verdict.certificate.historical


def test_expired_as_of_now_given(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store)
    later = datetime.now(UTC) + timedelta(days=366)
    assert judge(client, store, now=later).status == "expired"
    with pytest.raises(ValueError, match="timezone-aware"):
        judge(client, store, now=datetime.now())


def test_revoked_by_the_authority(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store)
    authority.revoke(issued.cert_id, "compromised", at=datetime(2026, 5, 1, tzinfo=UTC))
    verdict = judge(client, store)
    assert verdict.status == "revoked" and verdict.reasons == ("revoked",)
    assert verdict.detail == "revoked at 2026-05-01T00:00:00Z: compromised"
    assert verdict.revocation_reason == "compromised"


def test_revoked_and_expired_is_revoked_with_both_reasons(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store, issued_at=datetime.now(UTC) - timedelta(days=400))
    authority.revoke(issued.cert_id, "rotated")
    verdict = judge(client, store)
    assert verdict.status == "revoked" and verdict.reasons == ("revoked", "expired")


def test_revoked_by_a_status_list(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    list_uri = f"{authority.issuer}/status/1"
    provision(authority, store, claims={"status": {"status_list": {"idx": 3, "uri": list_uri}}})
    statuses = StatusList.empty(16, uri=list_uri)
    assert judge(client, store, status_list=statuses).status == "valid"
    statuses.set(3, 1)
    verdict = judge(client, store, status_list=statuses)
    assert verdict.status == "revoked" and verdict.reasons == ("revoked",)
    assert "status list" in verdict.detail
    # A list the certificate does not point at cannot say: the check is an error.
    other = StatusList.empty(16, uri=f"{authority.issuer}/status/2")
    wrong = judge(client, store, status_list=other)
    assert wrong.status == "error" and wrong.reasons == ("status_list_mismatch",)
    with pytest.raises(InvalidRequest):
        wrong.raise_for_error()


# --- invalid -----------------------------------------------------------------------------------


def test_a_tampered_signature_is_invalid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store)
    head, payload, signature = issued.token.split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    issued.record_overrides["token"] = f"{head}.{payload}.{flipped}"
    verdict = judge(client, store)
    assert verdict.status == "invalid" and verdict.reasons == ("bad_signature",)
    assert verdict.certificate is None and verdict.claims is None
    assert isinstance(verdict.error, PassgeniError) and verdict.error.code == "bad_signature"


def test_a_signature_by_another_key_is_invalid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, signing_key=ec.generate_private_key(ec.SECP256R1()))
    assert judge(client, store).reasons == ("bad_signature",)


def test_another_issuer_is_invalid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, issuer="https://evil.test")
    verdict = judge(client, store)
    assert verdict.status == "invalid" and verdict.reasons == ("wrong_issuer",)


def test_another_jti_than_the_store_names_is_invalid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store, jti="c-someone-else")
    verdict = judge(client, store)
    assert verdict.status == "invalid" and verdict.reasons == ("jti_mismatch",)
    assert (
        verdict.detail == f"the authority returned certificate c-someone-else, not {issued.cert_id}"
    )
    assert verdict.certificate is None  # not a verdict to act on as this certificate


def test_a_malformed_token_is_invalid(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store)
    issued.record_overrides["token"] = "not-a-jws"
    assert judge(client, store).reasons == ("malformed_token",)


def test_an_unknown_key_is_fetched_once_then_verified(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    client.jwks()  # cached: the authority's keys before it adds one
    assert authority.jwks_requests == 1
    authority.kid = authority.add_key()
    provision(authority, store)
    verdict = judge(client, store)
    assert verdict.status == "valid" and authority.jwks_requests == 2
    assert judge(client, store).status == "valid" and authority.jwks_requests == 2


def test_a_key_never_published_stays_unknown(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store, kid=authority.add_key(publish=False))
    verdict = judge(client, store)
    assert verdict.status == "invalid" and verdict.reasons == ("unknown_key",)
    assert authority.jwks_requests == 2  # the cached set, then one refresh


def test_pinned_keys_are_never_refreshed(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    pinned = JWKS.from_dict(authority.jwks_document())
    authority.kid = authority.add_key()
    provision(authority, store)
    verdict = judge(client, store, jwks=pinned)
    assert verdict.reasons == ("unknown_key",) and authority.jwks_requests == 0


# --- no certificate, error ---------------------------------------------------------------------


def test_no_credential_at_the_key(client: AuthorityClient) -> None:
    empty = StoredCredential(uri=parse_store_uri(URI), version="1")
    verdict = assess(client, "memory", empty)
    assert verdict.status == "no_certificate" and verdict.reasons == ("no_value",)
    assert verdict.detail == "no credential in key 'password'"


def test_no_references_in_the_value(client: AuthorityClient, store: MemoryStore) -> None:
    store.put(parse_store_uri(URI), {"password": "set by hand"})
    verdict = judge(client, store)
    assert verdict.status == "no_certificate" and verdict.reasons == ("no_references",)


def test_a_certificate_the_authority_does_not_know(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    issued, _ = provision(authority, store)
    del authority.certificates[issued.cert_id]
    verdict = judge(client, store)
    assert verdict.status == "no_certificate" and verdict.reasons == ("unknown_certificate",)
    assert verdict.detail == f"the authority knows no certificate {issued.cert_id}"


def test_an_unreachable_authority_is_an_error_never_a_verdict_on_the_credential(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store)
    authority.unavailable = True
    verdict = judge(client, store)
    assert verdict.status == "error" and verdict.reasons == ("authority_error",)
    assert verdict.detail.startswith("authority_unavailable: ")
    assert not verdict.value_covered and verdict.certificate is None
    with pytest.raises(AuthorityUnavailable):
        verdict.raise_for_error()


def test_an_unreachable_jwks_is_an_error(
    authority: FakeAuthority,
    client: AuthorityClient,
    store: MemoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provision(authority, store)
    real = authority.answer

    def no_jwks(method: str, path: str) -> tuple[int, Any]:
        return (503, {}) if path.endswith("jwks.json") else real(method, path)

    monkeypatch.setattr(authority, "answer", no_jwks)  # a JWKS endpoint that is down
    assert judge(client, store).reasons == ("authority_error",)


# --- the verdict's shape -----------------------------------------------------------------------


def test_every_status_and_reason_is_named() -> None:
    assert STATUSES[0] == "valid" and STATUSES[-1] == "error"
    assert frozenset(STATUSES) - {"valid", "expiring"} == FAILING
    assert len(set(REASONS)) == len(REASONS)


def test_to_dict_is_the_scan_entry(
    authority: FakeAuthority, client: AuthorityClient, store: MemoryStore
) -> None:
    provision(authority, store)
    out = judge(client, store).to_dict()
    assert list(out) == [
        "uri",
        "status",
        "detail",
        "cert_id",
        "cert_url",
        "standard",
        "standards_met",
        "issued_at",
        "expires_at",
        "store_version",
        "certified_version",
        "revocation_reason",
        "proof",
    ]
    assert "correct horse" not in repr(judge(client, store))


def test_a_store_uri_is_reported_as_given(client: AuthorityClient) -> None:
    uri: StoreURI = parse_store_uri("memory://x/y#api_key")
    verdict = assess(client, "memory", StoredCredential(uri=uri))
    assert verdict.uri == "memory://x/y#api_key"
