"""The conformance suite's checks of the proof record beside the value (see
``passgeni_core.stores``' proof records), mixed into :class:`BackendConformance`."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any

from ..stores import SecretStore, StoreURI, write_proof
from ._authority import FakeAuthority
from ._steps import certify_generated, judge, provision_generated


class ProofRecordChecks:
    """The proof record's part of the contract; the backend's test implements
    :meth:`consumed_value` (and :class:`BackendConformance` the rest)."""

    def consumed_value(self, uri: StoreURI) -> Mapping[str, Any] | None:
        """Every field of the secret's current value, as a workload reads it (None: absent).

        Read with the backend's own client, not through the store, so the suite sees
        what ``envFrom``, a Vault Agent template or an extraction would carry.
        """
        raise NotImplementedError

    def opened(self) -> contextlib.AbstractContextManager[SecretStore]:
        raise NotImplementedError

    def uri(self, name: str) -> StoreURI:
        raise NotImplementedError

    # -- the proof record beside the value --------------------------------------------------------

    def test_the_consumed_value_holds_only_the_credential(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("consumed")
            planned = store.prepare(uri)
            credential, refs, _ = provision_generated(authority, store, uri)
            value = dict(self.consumed_value(uri) or {})
            companions = sorted(n for n in value if ".passgeni-" in str(n))
            current = store.read(uri)
            assert current is not None and current.seed == credential.seed
            if planned.proof is None:
                # The inline layout (a backend without a proof record, or the opt-out).
                assert companions, "an inline credential without its proof in the value"
                assert current.proof_layout == "inline"
                return
            assert value == {uri.key: credential.password}, companions
            assert current.proof_layout == "sibling"
            assert current.refs is not None and current.refs.same_certificate(refs)
            assert judge(authority, store, uri).status == "valid"

    def test_a_failure_after_the_proof_write_loses_nothing(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("proof-crash")
            first, first_refs, _ = provision_generated(authority, store, uri)
            plan = store.prepare(uri)
            second, second_refs = certify_generated(authority, store, plan)
            write_proof(store, plan, second, second_refs)  # ... and the value write fails
            current = store.read(uri)
            assert current is not None and current.password == first.password
            assert current.refs is not None and current.refs.same_certificate(first_refs)
            verdict = judge(authority, store, uri)
            assert verdict.status == "valid" and verdict.proof == "generation", verdict.detail
            # The re-run completes the job.
            third, third_refs, _ = provision_generated(authority, store, uri)
            current = store.read(uri)
            assert current is not None and current.password == third.password
            assert current.refs is not None and current.refs.same_certificate(third_refs)
            assert judge(authority, store, uri).status == "valid"
            assert not second_refs.same_certificate(third_refs)

    def test_an_inline_credential_is_read_and_migrated(self) -> None:
        authority = FakeAuthority()
        with self.opened() as store:
            uri = self.uri("inline-migrated")
            # As stored before proof records: the plan without one writes inline.
            plan = dataclasses.replace(store.prepare(uri), proof=None)
            credential, refs = certify_generated(authority, store, plan)
            version = store.write(plan, credential, refs)
            store.write_metadata(uri, dataclasses.replace(refs, version=version))
            old = store.read(uri)
            assert old is not None and old.proof_layout == "inline"
            assert old.seed == credential.seed
            assert judge(authority, store, uri).status == "valid"
            fresh, _, _ = provision_generated(authority, store, uri)
            if store.prepare(uri).proof is None:
                return  # inline backends keep the inline layout
            value = dict(self.consumed_value(uri) or {})
            assert value == {uri.key: fresh.password}, sorted(value)
            current = store.read(uri)
            assert current is not None and current.proof_layout == "sibling"
            assert judge(authority, store, uri).status == "valid"
