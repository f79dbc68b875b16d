"""The harness of the bulk rotation tests: counting the authority's endpoints, real stores
with injected faults, and running ``rotate_many`` over a generated inventory."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from passgeni_core import (
    AuthorityClient,
    CertificateRecord,
    SecretStore,
    StoreUnavailable,
    StoreURI,
    WritePlan,
    assess,
    open_store,
)
from passgeni_core.workflows import InventoryEntry, RotationResult, parse_inventory, rotate_many
from tests.support import OpenBaoServer

__all__ = [
    "CountingSession",
    "Faulty",
    "Stores",
    "assert_stored_and_valid",
    "certificates_for",
    "inventory",
    "run",
    "vault_value",
]


class CountingSession(requests.Session):
    """A session that counts the authority's endpoints, and can act before a request."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.before: Callable[[str, str], None] | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        path = urlsplit(str(url)).path
        name = "revoke" if path.endswith("/revoke") else path
        if path.startswith("/api/certificates/") and not path.endswith("/revoke"):
            name = "get-certificate"
        with self.lock:
            self.calls[name] += 1
        if self.before is not None:
            self.before(str(method), name)
        return super().request(method, url, *args, **kwargs)


class Stores:
    """One real store per (thread, scheme), optionally wrapped to inject faults."""

    def __init__(self, wrap: Callable[[SecretStore], SecretStore] | None = None) -> None:
        self._local = threading.local()
        self._all: list[SecretStore] = []
        self._lock = threading.Lock()
        self.wrap = wrap

    def __call__(self, uri: StoreURI) -> SecretStore:
        cache: dict[str, SecretStore] = self._local.__dict__.setdefault("stores", {})
        if uri.scheme not in cache:
            store = open_store(uri)
            with self._lock:
                self._all.append(store)
            cache[uri.scheme] = self.wrap(store) if self.wrap else store
        return cache[uri.scheme]

    def close(self) -> None:
        for store in self._all:
            store.close()


class Faulty:
    """A real store whose chosen calls fail (by destination URI); the rest is delegated."""

    def __init__(
        self,
        inner: SecretStore,
        *,
        refuse_write: Sequence[str] = (),
        lose_answer: Sequence[str] = (),
        refuse_metadata: Sequence[str] = (),
        concurrent_writer: Callable[[StoreURI], None] | None = None,
        concurrent_on: Sequence[str] = (),
        gate: Callable[[StoreURI], None] | None = None,
        after_metadata: Callable[[StoreURI], None] | None = None,
    ) -> None:
        self.inner = inner
        self.refuse_write = set(refuse_write)
        self.lose_answer = set(lose_answer)
        self.refuse_metadata = set(refuse_metadata)
        self.concurrent_writer = concurrent_writer
        self.concurrent_on = set(concurrent_on)
        self.gate = gate
        self.after_metadata = after_metadata

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, plan: WritePlan, credential: Any, refs: Any) -> str:
        uri = str(plan.uri)
        if self.gate is not None:
            self.gate(plan.uri)
        if uri in self.refuse_write:
            raise StoreUnavailable(f"injected: connection reset while writing {uri}")
        if uri in self.concurrent_on and self.concurrent_writer is not None:
            self.concurrent_writer(plan.uri)  # someone else writes first: CAS fails for real
        version = self.inner.write(plan, credential, refs)
        if uri in self.lose_answer:
            raise StoreUnavailable(f"injected: the answer to the write of {uri} was lost")
        return version

    def write_metadata(self, uri: StoreURI, refs: Any) -> None:
        if str(uri) in self.refuse_metadata:
            raise StoreUnavailable(f"injected: metadata write of {uri} refused")
        self.inner.write_metadata(uri, refs)
        if self.after_metadata is not None:
            self.after_metadata(uri)


def inventory(uid: str, vault: int, aws: int = 0, epoch: str = "e1") -> list[InventoryEntry]:
    creds: list[dict[str, Any]] = [
        {"name": f"v{i}", "destination": f"vault://secret/bulk/{uid}/v{i}"} for i in range(vault)
    ]
    # Two more in folders of their own (no listing shortcut for a single secret).
    creds += [{"name": "lone", "destination": f"vault://secret/bulk/{uid}-lone/only#pw"}]
    creds += [
        {"name": f"a{i}", "destination": f"aws-sm://bulk/{uid}/a{i}#token", "preset": "pci-dss"}
        for i in range(aws)
    ]
    return parse_inventory({"epoch": epoch, "defaults": {"preset": "soc2"}, "credentials": creds})


def run(
    client: AuthorityClient,
    entries: list[InventoryEntry],
    stores: Stores,
    **options: Any,
) -> list[RotationResult | Exception]:
    done: list[int] = []
    try:
        out = rotate_many(
            client, entries, store_for=stores, on_done=lambda i, _: done.append(i), **options
        )
    finally:
        stores.close()
    assert sorted(done) == list(range(len(entries)))  # every entry reported once
    return out


def certificates_for(client: AuthorityClient, path: str) -> list[CertificateRecord]:
    return [r for r in client.iter_audit() if r.target is not None and r.target.path == path]


def vault_value(bao: OpenBaoServer, path: str) -> dict[str, str]:
    data: dict[str, str] = bao.hvac_client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    return data


def assert_stored_and_valid(client: AuthorityClient, uri: StoreURI, cert_id: str) -> None:
    store = open_store(uri)
    try:
        current = store.read(uri)
        assert current is not None and current.refs is not None
        assert current.refs.cert_id == cert_id
        assert current.metadata_refs is not None and current.metadata_refs.cert_id == cert_id
        entry = assess(client, store.system, current)
        assert entry.status == "valid", entry.detail
    finally:
        store.close()
