"""The backend conformance suite: what every secret store must do, checked.

A third party checks its backend by subclassing :class:`BackendConformance`
in a test module and saying how to open a store and where it may write::

    from passgeni_core.testing import BackendConformance

    class TestMyStoreConformance(BackendConformance):
        def make_store(self):
            return MyStore.from_uri(parse_store_uri("my://"), **options)

        def make_uri(self, name):
            # A fresh single-credential location nobody else writes to.
            return parse_store_uri(f"my://conformance/{RUN_ID}/{name}#password")

        def consumed_value(self, uri):
            # The secret's value as a workload reads it (all fields), None when absent.
            return my_client.read_raw(uri.location)

pytest collects the inherited ``test_*`` methods (this module never imports
pytest: any runner that calls ``test_*`` methods works). The suite checks
the contract of :class:`~passgeni_core.stores.SecretStore` (prepare, check,
write, write_metadata, read, list, close), the field codec round trip
through the store, version semantics (``write`` creates exactly the planned
version; the store's version changes with every write), refusal to clobber
(check-and-set, on create and on update), other keys of a secret kept, metadata beside the value,
``list`` of a location holding nothing raising ``StoreNotFound``, the proof
record (when ``prepare`` plans one: the consumed value holds the credential's
key only, a failure between the proof and the value writes loses nothing, an
inline credential stored before is read and migrated on its next write),
and then runs the judge (:func:`passgeni_core.workflows.assess`) over what
the backend stored, with certificates signed by a :class:`FakeAuthority`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from .._errors import StoreConflict, StoreNotFound
from ..crypto import Credential, encode_binding_key
from ..stores import (
    CertificateRefs,
    SecretStore,
    StoredCredential,
    StoreURI,
    credential_fields,
    parse_credential_fields,
    parse_seed,
    parse_store_uri,
)
from ._authority import FakeAuthority

__all__ = ["BackendConformance"]

from ._proof_checks import ProofRecordChecks
from ._steps import (
    AWKWARD_PASSWORD,
    certify,
    judge,
    provision_generated,
    write_both,
)


class BackendConformance(ProofRecordChecks):
    """Subclass and implement :meth:`make_store` and :meth:`make_uri` (see the module)."""

    def make_store(self) -> SecretStore:
        """A connected store of the backend under test (closed by the suite)."""
        raise NotImplementedError

    def make_uri(self, name: str) -> StoreURI:
        """A fresh single-credential URI for ``name``, absent from the store, unique per run."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def opened(self) -> Iterator[SecretStore]:
        store = self.make_store()
        try:
            yield store
        finally:
            store.close()

    def uri(self, name: str) -> StoreURI:
        # Re-parsed so that the key is explicit, as a user writes it.
        return parse_store_uri(str(self.make_uri(name)))

    def provision(
        self,
        authority: FakeAuthority,
        store: SecretStore,
        uri: StoreURI,
        password: str = AWKWARD_PASSWORD,
        *,
        metadata: bool = True,
    ) -> tuple[Credential, CertificateRefs, str]:
        """The nothing-lost order by hand: prepare, certify, check, write, write_metadata."""
        plan = store.prepare(uri)
        credential = Credential.create(password)
        _, refs = certify(authority, store, plan, credential)
        store.check(plan, refs)
        version = write_both(store, plan, credential, refs)
        if metadata:
            store.write_metadata(uri, dataclasses.replace(refs, version=version))
        return credential, refs, version

    # -- the interface contract -------------------------------------------------------------------

    def test_absent_credential_reads_as_none(self) -> None:
        with self.opened() as store:
            uri = self.uri("absent")
            assert store.read(uri) is None
            plan = store.prepare(uri)
            assert plan.uri == uri
            assert plan.current is None or plan.current.password is None

    def test_system_names_the_scheme(self) -> None:
        with self.opened() as store:
            assert isinstance(store.system, str) and store.system
            assert isinstance(store, SecretStore)

    def test_write_then_read_round_trips_the_fields(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("round-trip")
            credential, refs, version = self.provision(authority, store, uri)
            got = store.read(uri)
            assert got is not None and got.uri == uri
            assert got.password == credential.password == AWKWARD_PASSWORD
            assert got.binding_key == credential.binding_key
            assert got.refs is not None and got.refs.same_certificate(refs)
            assert got.version == (version or None)  # "" or None: an unversioned store
            assert got.credential is not None
            assert AWKWARD_PASSWORD not in repr(got)

    def test_write_creates_the_planned_version(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("versions")
            plan = store.prepare(uri)
            credential = Credential.create("first-password")
            _, refs = certify(authority, store, plan, credential)
            version = write_both(store, plan, credential, refs)
            if plan.next_version is not None:
                assert version == plan.next_version
            again = store.prepare(uri)
            assert again.current is not None and again.current.password == "first-password"
            second = Credential.create("second-password")
            _, refs2 = certify(authority, store, again, second)
            version2 = write_both(store, again, second, refs2)
            if again.next_version is not None:
                assert version2 == again.next_version
                assert again.next_version != plan.next_version
            got = store.read(uri)
            assert got is not None and got.password == "second-password"
            assert got.refs is not None and got.refs.cert_id == refs2.cert_id
            if version is not None and version2 is not None and got.version is not None:
                assert version2 != version and got.version == version2

    def test_write_refuses_to_clobber_a_concurrent_create(self) -> None:
        self._race("clobber-create", None, "first writer", "second writer", "create")

    def test_write_refuses_to_clobber_a_concurrent_write(self) -> None:
        self._race("clobber", "original", "winner", "loser", "write")

    def _race(self, name: str, original: str | None, winner: str, loser: str, what: str) -> None:
        """Two writes planned from the same read: the second to land is refused."""
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri(name)
            if original is not None:
                self.provision(authority, store, uri, original)
            mine, theirs = store.prepare(uri), store.prepare(uri)
            first = Credential.create(winner)
            _, refs = certify(authority, store, theirs, first)
            write_both(store, theirs, first, refs)
            second = Credential.create(loser)
            _, lost_refs = certify(authority, store, mine, second)
            try:
                write_both(store, mine, second, lost_refs)
            except StoreConflict:
                pass
            else:
                raise AssertionError(f"a {what} planned before another {what} was not refused")
            got = store.read(uri)
            assert got is not None and got.password == winner

    def test_other_keys_of_the_secret_are_kept(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("two-keys")
            other = uri.with_location(uri.location, "second_key")
            first, _, _ = self.provision(authority, store, uri, "first-key-password")
            second, _, _ = self.provision(authority, store, other, "second-key-password")
            a, b = store.read(uri), store.read(other)
            assert a is not None and a.password == first.password
            assert b is not None and b.password == second.password
            listed = {str(c.uri): c for c in store.list(uri.with_location(uri.location))}
            assert str(other) in listed or str(uri) in listed

    def test_metadata_is_beside_the_value(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("metadata")
            _, refs, version = self.provision(authority, store, uri, metadata=False)
            before = store.read(uri)
            assert before is not None
            # Some stores write the references beside a new value at once (tags, annotations).
            assert before.metadata_refs is None or before.metadata_refs.same_certificate(refs)
            full = dataclasses.replace(refs, version=version)
            store.write_metadata(uri, full)
            store.write_metadata(uri, full)  # idempotent
            got = store.read(uri)
            assert got is not None and got.metadata_refs is not None
            assert got.metadata_refs.cert_id == refs.cert_id
            assert got.metadata_refs.cert_url == refs.cert_url
            assert got.metadata_refs.standard == refs.standard
            if version is not None and got.metadata_refs.version is not None:
                assert got.metadata_refs.version == version

    def test_list_finds_the_credential(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("listed")
            _, refs, _ = self.provision(authority, store, uri)
            found: list[StoredCredential] = list(store.list(uri))
            mine = [c for c in found if c.uri == uri]
            assert len(mine) == 1, [str(c.uri) for c in found]
            assert mine[0].refs is not None and mine[0].refs.cert_id == refs.cert_id
            assert mine[0].password == AWKWARD_PASSWORD

    def test_listing_what_does_not_exist_is_store_not_found(self) -> None:
        # A typo'd prefix must never scan as "0 credentials, ok".
        with self.opened() as store:
            single = self.uri("never-written")
            bare = parse_store_uri(f"{single.scheme}://{single.location}", allow_prefix=True)
            for uri in (single, bare):
                try:
                    found = list(store.list(uri))
                except StoreNotFound:
                    continue
                raise AssertionError(f"{uri}: listed {len(found)} entries, not StoreNotFound")

    def test_check_accepts_ordinary_references(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("check")
            plan = store.prepare(uri)
            _, refs = certify(authority, store, plan, Credential.create("x" * 20))
            store.check(plan, refs)  # raises StoreLimitExceeded only for what cannot be stored

    def test_close_releases_the_store(self) -> None:
        store = self.make_store()
        store.close()

    def test_field_codec_round_trips(self) -> None:
        credential = Credential.create(AWKWARD_PASSWORD)
        refs = CertificateRefs(cert_id="c-1", cert_url="https://a.test/cert/c-1")
        fields = credential_fields("k", credential, refs)
        assert credential.binding_key is not None
        assert fields["k.passgeni-binding-key"] == encode_binding_key(credential.binding_key)
        password, binding, parsed = parse_credential_fields("k", fields)
        assert (password, binding) == (credential.password, credential.binding_key)
        assert parsed == refs
        seed = Credential.new_seed()
        generated = credential_fields("k", Credential.generated("pw", seed), refs)
        assert "k.passgeni-binding-key" not in generated
        assert parse_seed("k", generated) == seed

    # -- generation proofs ------------------------------------------------------------------------

    def test_a_generated_credential_is_stored_with_its_seed_and_proven(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("generated")
            credential, _, _ = provision_generated(authority, store, uri)
            current = store.read(uri)
            assert current is not None and current.seed == credential.seed
            assert current.password == credential.password and current.binding_key is None
            verdict = judge(authority, store, uri)
            assert verdict.status == "valid", verdict.detail
            assert verdict.proof == "generation"

    def test_judge_finds_a_value_changed_beside_its_seed(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("generated-changed")
            credential, refs, _ = provision_generated(authority, store, uri)
            assert credential.seed is not None
            # Someone edits the password and leaves the seed and references in place
            # (the value only: another tool never writes the proof record).
            plan = store.prepare(uri)
            store.write(plan, Credential.generated("chosen-by-hand-1A!", credential.seed), refs)
            verdict = judge(authority, store, uri)
            assert verdict.status == "drifted" and verdict.has("provenance_mismatch")
            assert verdict.proof is None

    def test_a_generated_credential_replaces_an_older_binding_key(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("generated-after-binding")
            self.provision(authority, store, uri)
            credential, _, _ = provision_generated(authority, store, uri)
            current = store.read(uri)
            assert current is not None and current.binding_key is None
            assert current.seed == credential.seed
            assert judge(authority, store, uri).proof == "generation"

    # -- the judge over what the backend stores ---------------------------------------------------

    def test_judge_finds_a_provisioned_credential_valid(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("judge-valid")
            self.provision(authority, store, uri)
            verdict = judge(authority, store, uri)
            assert verdict.status == "valid", verdict.detail
            assert verdict.reasons == () and verdict.certificate is not None
            assert verdict.proof == "binding"  # an older certificate: binding only

    def test_judge_finds_a_replaced_value_drifted(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("judge-drift")
            _, refs, _ = self.provision(authority, store, uri)
            # Another tool writes a new password but keeps the old references (the value
            # only: another tool never writes the proof record).
            plan = store.prepare(uri)
            store.write(plan, Credential.create("changed-by-hand"), refs)
            verdict = judge(authority, store, uri)
            assert verdict.status == "drifted"
            assert verdict.has("binding_mismatch")
            if plan.next_version is not None:
                assert verdict.has("version_mismatch")

    def test_judge_finds_lagging_metadata(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("judge-lagging")
            self.provision(authority, store, uri)
            # A rotation that stopped after the value, before the metadata.
            self.provision(authority, store, uri, "the-new-password", metadata=False)
            verdict = judge(authority, store, uri)
            assert verdict.status == "drifted" and verdict.reasons == ("metadata_lagging",)
            assert verdict.value_covered

    def test_judge_finds_a_revoked_certificate(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("judge-revoked")
            _, refs, _ = self.provision(authority, store, uri)
            authority.revoke(refs.cert_id, "compromised")
            verdict = judge(authority, store, uri)
            assert verdict.status == "revoked" and verdict.has("revoked")
            assert verdict.revocation_reason == "compromised"
