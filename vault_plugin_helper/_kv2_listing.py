"""Listing a KV v2 prefix: the secrets under it (one ``LIST`` per folder), then each one read,
several at once.

Reading a secret is two round trips (its metadata, then its current version) that wait on
Vault, not on this process: a scan of 10,000 secrets read one after the other spends most
of its time waiting. So up to :data:`READERS` secrets are read at once, each reader thread
with a client of its own (its own ``requests`` session and connection pool: an hvac client
is not shared across threads), made like the store's (same address, TLS, namespace and
token: no new login). The results keep the listing's order, and the first error stops the
listing as it did when reading one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from passgeni_core.stores import StoreURI

from ._kv2 import MISSING, KvV2, Where

if TYPE_CHECKING:
    import hvac

__all__ = ["READERS", "read_each", "secrets_under"]

#: Secrets a listing reads at once.
READERS = 8

T = TypeVar("T")


def secrets_under(
    kv: KvV2, prefix: StoreURI, at: Where, *, first: bool, hidden: str = ""
) -> Iterator[StoreURI]:
    """The secrets under ``at`` (one ``LIST`` per folder, depth first), in listing order;
    the mount's top-level folder ``hidden`` (the proof records) is not walked."""
    base = at.mount.path
    if first and at.path:
        # "vault://secret/app" may be a secret as well as a folder.
        yield prefix.with_location(at.shown, prefix.key)
    data = kv.list_folder(at)
    if data is MISSING or not isinstance(data, dict):
        return
    keys = (data.get("data") or {}).get("keys") or []
    for name in sorted(str(k) for k in keys):
        if hidden and not at.path and name == hidden + "/":
            continue  # the proof records, not credentials
        child = f"{at.path}/{name}".strip("/") if at.path else name
        if name.endswith("/"):
            folder = child.rstrip("/")
            inner = Where(mount=at.mount, path=folder, shown=f"{base}/{folder}")
            yield from secrets_under(kv, prefix, inner, first=False, hidden=hidden)
        else:
            yield prefix.with_location(f"{base}/{child}", prefix.key)


def read_each(
    uris: Sequence[StoreURI],
    read: Callable[[StoreURI, KvV2], T],
    sibling: Callable[[], hvac.Client] | None,
    *,
    readers: int,
    alone: KvV2,
) -> Iterator[T]:
    """``read(uri, kv)`` for each of ``uris``, in order; ``readers`` at once, each thread with
    a client from ``sibling``. Without ``sibling`` (or one reader, or one URI), one after
    the other with ``alone``."""
    if sibling is None or readers < 2 or len(uris) < 2:
        for uri in uris:
            yield read(uri, alone)
        return
    local = threading.local()
    made: list[hvac.Client] = []
    lock = threading.Lock()

    def one(uri: StoreURI) -> T:
        kv = getattr(local, "kv", None)
        if kv is None:
            client = sibling()
            with lock:
                made.append(client)
            kv = local.kv = KvV2(client)
        return read(uri, kv)

    try:
        with ThreadPoolExecutor(min(readers, len(uris))) as pool:
            yield from pool.map(one, uris)
    finally:
        for client in made:
            client.adapter.close()
