"""The backend conformance suite against the reference backend, ``memory://``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from passgeni_core.stores import MemorySpace, MemoryStore, StoreURI, open_store, parse_store_uri
from passgeni_core.testing import BackendConformance


class TestMemoryConformance(BackendConformance):
    space = MemorySpace()
    run = uuid.uuid4().hex[:8]

    def make_store(self) -> MemoryStore:
        return MemoryStore(space=self.space)

    def make_uri(self, name: str) -> StoreURI:
        return parse_store_uri(f"memory://conformance/{self.run}/{name}#password")

    def consumed_value(self, uri: StoreURI) -> Mapping[str, Any] | None:
        secret = self.space.secrets.get(uri.location)
        return dict(secret.versions[-1]) if secret and secret.versions else None


class TestMemoryInlineConformance(TestMemoryConformance):
    """The ``proof_location=inline`` opt-out: the proof inside the value, as before."""

    space = MemorySpace()

    def make_store(self) -> MemoryStore:
        return MemoryStore(space=self.space, proof_location="inline")


class TestMemoryThroughTheRegistry(BackendConformance):
    """The same suite through the ``passgeni.stores`` entry point (``open_store``)."""

    run = uuid.uuid4().hex[:8]

    def make_store(self) -> MemoryStore:
        store = open_store("memory://")
        assert isinstance(store, MemoryStore)
        return store

    def make_uri(self, name: str) -> StoreURI:
        return parse_store_uri(f"memory://registry/{self.run}/{name}#password")

    def consumed_value(self, uri: StoreURI) -> Mapping[str, Any] | None:
        store = open_store("memory://")
        assert isinstance(store, MemoryStore)
        secret = store.space.secrets.get(uri.location)
        return dict(secret.versions[-1]) if secret and secret.versions else None
