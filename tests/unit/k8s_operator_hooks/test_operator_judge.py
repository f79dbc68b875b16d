"""The operator's expiry check asks the one judge (no server: in-process store and authority).

It used to trust the authority's JSON (``status``, ``expires_at``); now a key is
due for rotation when the verdict says its certificate expires soon, expired,
was revoked or does not verify, signature checked.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from k8s_operator_hooks._handlers import (
    PRESET_ANNOTATION,
    OperatorConfig,
    _due_for_rotation,
    _Runtime,
)
from passgeni_core import AuthorityUnavailable
from passgeni_core.crypto import Credential
from passgeni_core.stores import CertificateRefs, MemoryStore, parse_store_uri, write_proof
from passgeni_core.testing import FakeAuthority, IssuedToken


class ManagedSecrets(MemoryStore):
    """Kubernetes Secrets as the operator reads them, in memory, every one managed (soc2)."""

    system = "k8s"

    def read_metadata(self, namespace: str, name: str) -> dict[str, Any] | None:
        return {"namespace": namespace, "name": name, "annotations": {PRESET_ANNOTATION: "soc2"}}


@pytest.fixture
def store() -> ManagedSecrets:
    return ManagedSecrets()


@pytest.fixture
def authority() -> FakeAuthority:
    return FakeAuthority()


@pytest.fixture
def runtime(authority: FakeAuthority, store: ManagedSecrets) -> Iterator[_Runtime]:
    rt = _Runtime(OperatorConfig(rotate_window=timedelta(days=30)))
    # What start() sets up from the environment (the authority, the k8s store), in memory.
    rt._client, rt._store = authority.client(), store
    yield rt
    rt._client.close()


NAMESPACE = "judge-" + secrets.token_hex(4)


def managed(
    authority: FakeAuthority, store: ManagedSecrets, name: str, **issue: Any
) -> IssuedToken:
    """A Secret the operator manages, its key certified (the nothing-lost order by hand)."""
    uri = parse_store_uri(f"k8s://{NAMESPACE}/{name}#password")
    plan = store.prepare(uri)
    credential = Credential.create("a managed password")
    issued = authority.issue(credential, target=uri.target(store.system, None), **issue)
    refs = CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=authority.cert_url(issued.cert_id),
        standard="soc2",
        expires_at=datetime.fromtimestamp(issued.payload["exp"], UTC),
    )
    write_proof(store, plan, credential, refs)  # the proof record first
    store.write(plan, credential, refs)
    store.write_metadata(uri, refs)
    return issued


def due(runtime: _Runtime, name: str) -> tuple[str, ...]:
    return _due_for_rotation(runtime, NAMESPACE, name, datetime.now(UTC))


def test_a_valid_certificate_is_left_alone(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    managed(authority, store, "fresh")
    assert due(runtime, "fresh") == ()


def test_an_expiring_certificate_is_due(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    managed(authority, store, "old", issued_at=datetime.now(UTC) - timedelta(days=350))
    assert due(runtime, "old") == ("password",)


def test_a_revoked_certificate_is_due(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    issued = managed(authority, store, "revoked")
    authority.revoke(issued.cert_id, "compromised")
    assert due(runtime, "revoked") == ("password",)


def test_a_certificate_that_does_not_verify_is_due_whatever_the_record_says(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    # Signed by a key the authority never published; the record says "valid", far from expiry.
    issued = managed(authority, store, "forged", kid=authority.add_key(publish=False))
    record = authority.record(issued.cert_id)
    assert record is not None and record["status"] == "valid"
    assert due(runtime, "forged") == ("password",)


def test_a_value_edited_by_hand_is_left_to_a_scan(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    issued = managed(authority, store, "edited")
    uri = parse_store_uri(f"k8s://{NAMESPACE}/edited#password")
    refs = CertificateRefs(cert_id=issued.cert_id, cert_url=authority.cert_url(issued.cert_id))
    store.write(store.prepare(uri), Credential.create("changed by hand"), refs)
    assert due(runtime, "edited") == ()


def test_an_unreachable_authority_is_never_a_reason_to_rotate(
    runtime: _Runtime, authority: FakeAuthority, store: ManagedSecrets
) -> None:
    managed(authority, store, "unreachable", issued_at=datetime.now(UTC) - timedelta(days=350))
    authority.unavailable = True
    with pytest.raises(AuthorityUnavailable):  # the expiry loop logs it and goes on
        due(runtime, "unreachable")
