"""The steps of the nothing-lost write order, by hand, for the conformance suite."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from ..crypto import Credential
from ..stores import (
    CertificateRefs,
    SecretStore,
    StoreURI,
    WritePlan,
    store_target,
    write_proof,
)
from ..workflows import Verdict, assess
from ._authority import FakeAuthority, IssuedToken

#: Printable ASCII a password may hold, including characters stores and URLs treat specially.
AWKWARD_PASSWORD = "p@ss w0rd/#?%&=+\\\"'`$!~^*()[]{}<>|;:,."


def _refs(authority: FakeAuthority, issued: IssuedToken, plan: WritePlan) -> CertificateRefs:
    return CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=authority.cert_url(issued.cert_id),
        standard=issued.payload["compliance_standard"],
        expires_at=datetime.fromtimestamp(issued.payload["exp"], UTC),
        version=plan.next_version,
    )


def certify(
    authority: FakeAuthority, store: SecretStore, plan: WritePlan, credential: Credential
) -> tuple[IssuedToken, CertificateRefs]:
    """A binding-only certificate for ``credential`` at the plan's target, and its references."""
    issued = authority.issue(credential, target=store_target(store, plan.uri, plan.next_version))
    return issued, _refs(authority, issued, plan)


def certify_generated(
    authority: FakeAuthority, store: SecretStore, plan: WritePlan
) -> tuple[Credential, CertificateRefs]:
    """A credential generated with a generation proof, certified for the plan's target."""
    issued, credential = authority.issue_generated(
        target=store_target(store, plan.uri, plan.next_version)
    )
    return credential, _refs(authority, issued, plan)


def write_both(
    store: SecretStore, plan: WritePlan, credential: Credential, refs: CertificateRefs
) -> str:
    """Step 3 of the nothing-lost order: the proof record (if the plan names one), the value."""
    write_proof(store, plan, credential, refs)
    return store.write(plan, credential, refs)


def provision_generated(
    authority: FakeAuthority, store: SecretStore, uri: StoreURI
) -> tuple[Credential, CertificateRefs, str]:
    """The nothing-lost order for a generated credential (its seed stored beside it)."""
    plan = store.prepare(uri)
    credential, refs = certify_generated(authority, store, plan)
    store.check(plan, refs)
    version = write_both(store, plan, credential, refs)
    store.write_metadata(uri, dataclasses.replace(refs, version=version))
    return credential, refs, version


def judge(authority: FakeAuthority, store: SecretStore, uri: StoreURI) -> Verdict:
    """The one judge's verdict on what ``store`` holds at ``uri``."""
    current = store.read(uri)
    assert current is not None, f"{uri}: nothing read back"
    with authority.client() as client:
        return assess(client, store.system, current)
