"""``memory://``: a versioned secret store in the process's memory.

The reference backend: every method of :class:`~passgeni_core.stores.SecretStore`
in a page, with the semantics the first-party backends have (a new version
per write, check-and-set against the version read, metadata beside the value,
merged, never removing other keys). Useful for tests and as an example for a
third-party backend; it is registered as the ``memory`` entry point of the
``passgeni.stores`` group, like any backend.

URIs: ``memory://PATH#KEY``, ``PATH`` being ``/``-separated segments of
letters, digits and ``- _ . @ + =``; prefixes (``memory://``,
``memory://app/``) list everything under them. Stores opened with
:func:`~passgeni_core.stores.open_store` share one process-wide space; an
instance made with ``MemoryStore()`` has its own unless given ``space=``.

Proof records (see :mod:`._proof`): each secret has one beside its versions
(``proof_location=sibling``, the default), shown as ``memory://passgeni-proof/PATH``;
with ``proof_location=inline`` the proof stays inside the value.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .._errors import (
    InvalidStoreURI,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreNotFound,
)
from ..crypto import Credential
from ._codec import (
    CertificateRefs,
    StoredCredential,
    clean_value_fields,
    merge_credential_fields,
    stored_credentials,
)
from ._proof import PROOF_SIBLING, ProofEntry, merge_proof, proof_location_option
from ._protocol import WritePlan
from ._uri import StoreURI, check_segments

#: The longest metadata value the store takes (a limit ``check`` enforces, as real stores have).
MAX_METADATA_VALUE = 512


class MemoryLocations:
    """``memory://PATH``: one or more segments; the empty location is the prefix of all."""

    form = "memory://PATH#KEY"
    incomplete = "expected PATH"

    def check(self, location: str) -> bool:
        if not location:
            return False
        check_segments(location.split("/"), "path")
        return True


@dataclass
class _Secret:
    versions: list[dict[str, str]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    #: The proof record beside the value (sibling layout).
    proof: dict[str, str] = field(default_factory=dict)


class MemorySpace:
    """The secrets of one or more :class:`MemoryStore` instances (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.secrets: dict[str, _Secret] = {}

    def __repr__(self) -> str:
        return f"MemorySpace(secrets={len(self.secrets)})"


_SHARED = MemorySpace()


class MemoryStore:
    """The ``memory://`` store. ``repr`` shows the number of secrets, never a value."""

    system = "memory"
    locations = MemoryLocations()
    settings = ("proof_location",)

    def __init__(
        self, *, space: MemorySpace | None = None, proof_location: str | None = None
    ) -> None:
        self.space = space if space is not None else MemorySpace()
        self.proof_location = proof_location_option(proof_location, where="memory://")

    @classmethod
    def from_uri(
        cls,
        uri: StoreURI,
        *,
        space: MemorySpace | None = None,
        proof_location: str | None = None,
    ) -> MemoryStore:
        """The store for ``open_store``: the process-wide space unless ``space`` is given."""
        if uri.scheme != "memory":
            raise InvalidStoreURI(f"{uri} is not a memory:// URI")
        return cls(space=space if space is not None else _SHARED, proof_location=proof_location)

    def __repr__(self) -> str:
        return f"MemoryStore({self.space!r})"

    # -- reading ------------------------------------------------------------------------------

    def _records(
        self, uri: StoreURI, only_key: str | None
    ) -> tuple[str | None, list[StoredCredential]]:
        secret = self.space.secrets.get(uri.location)
        if secret is None or not secret.versions:
            return None, []
        version = str(len(secret.versions))
        records = stored_credentials(
            uri.with_location(uri.location, uri.key),
            secret.versions[-1],
            version=version,
            metadata_refs=CertificateRefs.from_metadata(secret.metadata),
            only_key=only_key,
            proof=secret.proof,
        )
        return version, records

    def read(self, uri: StoreURI) -> StoredCredential | None:
        with self.space.lock:
            _, records = self._records(uri, uri.key)
        record = records[0] if records else None
        return record if record is not None and record.password is not None else None

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        """Everything under ``prefix``; StoreNotFound when a non-empty prefix names nothing."""
        base = prefix.location
        only_key = prefix.key if prefix.explicit_key else None
        with self.space.lock:
            names = sorted(
                n for n in self.space.secrets if not base or n == base or n.startswith(base + "/")
            )
            found = [r for n in names for r in self._records(prefix.with_location(n), only_key)[1]]
        if base and not names:
            raise StoreNotFound(f"memory://{base}: no secret and no folder at this path")
        yield from found

    # -- writing ------------------------------------------------------------------------------

    def prepare(self, uri: StoreURI) -> WritePlan:
        with self.space.lock:
            version, records = self._records(uri, uri.key)
        count = int(version or "0")
        return WritePlan(
            uri=uri,
            current=records[0] if records else None,
            next_version=str(count + 1),
            precondition=version or "",
            proof=(
                f"memory://passgeni-proof/{uri.location}"
                if self.proof_location == PROOF_SIBLING
                else None
            ),
        )

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        for name, value in refs.to_metadata().items():
            if len(value) > MAX_METADATA_VALUE:
                raise StoreLimitExceeded(
                    f"{plan.uri}: metadata {name} would be longer than {MAX_METADATA_VALUE} "
                    "characters"
                )

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        uri = plan.uri
        with self.space.lock:
            secret = self.space.secrets.setdefault(uri.location, _Secret())
            if str(len(secret.versions) or "") != plan.precondition:
                raise StoreConflict(
                    f"{uri}: the secret changed since it was read (version "
                    f"{len(secret.versions)}, expected {plan.precondition or 'none'})"
                )
            latest = secret.versions[-1] if secret.versions else {}
            value = (
                clean_value_fields(latest, uri.key, credential)
                if plan.proof is not None
                else merge_credential_fields(latest, uri.key, credential, refs)
            )
            secret.versions.append(value)
            return str(len(secret.versions))

    def write_proof(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> None:
        """The proof record's entry for the version ``plan`` creates (before ``write``)."""
        uri = plan.uri
        entry = ProofEntry.of(credential, refs.cert_id, refs.cert_url, plan.next_version)
        keep = plan.current.refs.cert_id if plan.current and plan.current.refs else None
        with self.space.lock:
            secret = self.space.secrets.setdefault(uri.location, _Secret())
            secret.proof = merge_proof(secret.proof, uri.key, entry, keep_cert=keep)

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        with self.space.lock:
            secret = self.space.secrets.get(uri.location)
            if secret is None:
                raise StoreError(f"{uri}: no such secret to annotate")
            secret.metadata.update(refs.to_metadata())

    # -- for tests and examples: what a user or another tool would do to the store ----------

    def put(
        self, uri: StoreURI, values: dict[str, str], *, metadata: dict[str, Any] | None = None
    ) -> str:
        """Write a new version with ``values`` merged in (no check-and-set), as another tool would."""
        with self.space.lock:
            secret = self.space.secrets.setdefault(uri.location, _Secret())
            latest = secret.versions[-1] if secret.versions else {}
            secret.versions.append({**latest, **values})
            if metadata is not None:
                secret.metadata.update({k: str(v) for k, v in metadata.items()})
            return str(len(secret.versions))

    def close(self) -> None:
        """Nothing to release: the space outlives its stores."""
