"""The backend protocol: what a secret store implements.

A backend is a class implementing :class:`SecretStore` with a
``from_uri(uri, **options)`` class method, registered under its scheme in
the ``passgeni.stores`` entry-point group (see :mod:`._registry`), and,
optionally, a ``locations`` attribute validating its URIs (a
:class:`~passgeni_core.stores.LocationGrammar`). It stores a credential with
the field codec (:func:`~passgeni_core.stores.credential_fields`,
:func:`~passgeni_core.stores.stored_credentials`) and raises only
``StoreError`` subclasses, with messages free of secret values.

A backend may also offer ``plan_absent(uris) -> list[WritePlan | None]``
(optional, found with ``getattr``): for bulk rotation, the plans of the URIs
it can tell are absent in a few calls (Vault: one ``LIST`` per folder), the
same plans ``prepare`` would make, and ``None`` for the others, which then go
through ``prepare``. Check-and-set still guards the write: a secret created
after the listing makes the write fail (and its certificate is revoked).

A backend may also have a ``scope`` attribute (a :class:`~passgeni_core.stores.StoreScope`:
Vault's address and namespace), when its URIs do not name the store completely: it goes
into every certificate's ``target`` (:func:`store_target`) and into the credentials it
reads (``stored_credentials(..., scope=...)``), and the judge reports a credential found in
another store than its certificate names as drifted.

A backend may also offer ``write_proof(plan, credential, refs) -> None`` (optional,
called through :func:`write_proof`): the **proof record** beside the value (see
:mod:`passgeni_core.stores._proof`). ``prepare`` then sets ``plan.proof`` to where the
record goes (and checks that the caller may write it, so nothing is certified for a
write that would fail), the workflows call ``write_proof`` before ``write``, and
``write`` stores the value with the credential's key only
(:func:`~passgeni_core.stores.clean_value_fields`); ``read`` and ``list`` pass the record
to ``stored_credentials(..., proof=...)``. A backend without it (or with
``plan.proof`` None: the ``proof_location=inline`` opt-out) keeps proof and references
inside the value (:func:`~passgeni_core.stores.merge_credential_fields`).

The order in which the workflows call these methods, so that a failure at
any step loses nothing, is described in :mod:`passgeni_core.workflows`
(``provision_into_store``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..crypto import Credential
from ..model import Target
from ._codec import CertificateRefs, StoredCredential
from ._uri import StoreScope, StoreURI


@dataclass(frozen=True, kw_only=True)
class WritePlan:
    """The result of :meth:`SecretStore.prepare`: what the next write will do.

    Holds no secret: ``current`` hides its password in ``repr``, and the
    backend re-reads other fields under check-and-set at write time.
    """

    uri: StoreURI
    #: The credential at the URI now (None: absent).
    current: StoredCredential | None
    #: The version the write will create; goes into the certificate's target.
    next_version: str | None
    #: Backend-private check-and-set token (the version read), "" when the secret is absent.
    precondition: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Where the proof record goes (shown in messages, e.g. ``vault://secret/passgeni-proof/app``);
    #: None: the proof stays inside the value (inline layout).
    proof: str | None = None


@runtime_checkable
class SecretStore(Protocol):
    """What a backend implements (Vault, AWS Secrets Manager, Kubernetes, third parties).

    One instance is one connection (configured from its ecosystem's usual
    environment); URIs are passed per call. Every method raises
    :class:`StoreError` subclasses only (``StoreUnavailable`` for connection
    failures and timeouts, ``StoreConflict`` for a failed check-and-set,
    ``StoreLimitExceeded`` for a store limit), with messages that never
    contain a secret value or a credential of the connection.
    """

    #: The ``target.system`` value for this backend (its URI scheme).
    system: str

    def prepare(self, uri: StoreURI) -> WritePlan:
        """Read the current state and plan the next write; check known limits. Writes nothing."""
        ...

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        """Raise StoreLimitExceeded if ``refs`` cannot be stored. Writes nothing."""
        ...

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        """Store the credential and refs as one new version, exactly ``plan.next_version``.

        Check-and-set against ``plan.precondition``: StoreConflict if the secret
        changed since ``prepare``. Other fields of the value are kept. Returns
        the version written.
        """
        ...

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        """Merge the refs into the store's metadata, never removing other keys."""
        ...

    def read(self, uri: StoreURI) -> StoredCredential | None:
        """The credential at ``uri`` (None if the secret or the key does not exist)."""
        ...

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        """Every secret under ``prefix``: one entry per certified key, else one for the URI key."""
        ...

    def close(self) -> None: ...


def plan_absent(store: SecretStore, uris: list[StoreURI]) -> list[WritePlan | None]:
    """The backend's optional ``plan_absent`` (see "Backends"); ``None`` where unknown.

    Any failure of the shortcut just means every URI goes through ``prepare``.
    """
    method = getattr(store, "plan_absent", None)
    if not uris or not callable(method):
        return [None] * len(uris)
    try:
        plans = list(method(uris))
    except Exception:
        return [None] * len(uris)
    if len(plans) != len(uris) or not all(
        p is None or (isinstance(p, WritePlan) and p.uri == u and p.current is None)
        for p, u in zip(plans, uris, strict=True)
    ):
        return [None] * len(uris)
    return plans


def write_proof(
    store: SecretStore, plan: WritePlan, credential: Credential, refs: CertificateRefs
) -> None:
    """Step 3a of the write order: the backend's proof record, when ``plan.proof`` names one.

    Written before the value (``write``), keeping the entry of the credential stored
    now, so a failure between the two loses nothing (see :mod:`._proof`).
    """
    if plan.proof is None:
        return
    method = getattr(store, "write_proof", None)
    if not callable(method):
        raise TypeError(f"{type(store).__name__} planned a proof record but has no write_proof")
    method(plan, credential, refs)


def store_scope(store: SecretStore) -> StoreScope | None:
    """The backend's optional ``scope`` (see "Backends"), else None."""
    scope = getattr(store, "scope", None)
    return scope if isinstance(scope, StoreScope) else None


def store_target(store: SecretStore, uri: StoreURI, version: str | None) -> Target:
    """The certificate's ``target`` for a write of ``uri`` into ``store`` creating ``version``."""
    return uri.target(store.system, version, store_scope(store))
