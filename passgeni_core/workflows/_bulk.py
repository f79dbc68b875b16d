"""Bulk rotation: many credentials, certified in chunks, stores read and written by a thread pool."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .._errors import (
    InvalidRequest,
    PassgeniError,
    StoreError,
)
from ..client import AuthorityClient
from ..model import EntropySource, GenerationParameters, check_preset, get_preset
from ..stores import SecretStore, StoreScope, StoreURI, WritePlan, plan_absent, store_scope
from ._assessment import assess
from ._into_store import REVOKE_REASON_NOT_STORED, _revoke_quietly, store_certified
from ._inventory import InventoryEntry
from ._keepers import check_keeper, keeper_label
from ._provision import CertifyRequest, PendingCertificate, accept_issued, issue_many
from ._rotation import (
    RotationResult,
    _keep,
    _params_for,
    _result_of,
    ensure_rotated,
)
from ._targets import CredentialTarget, open_target
from ._verdict import REVOKED

# --- bulk rotation: the batch pipeline ------------------------------------------------------

#: Credentials certified per authority round trip in :func:`rotate_many`.
DEFAULT_CHUNK = 100

BulkOutcome = RotationResult | Exception


@dataclass(eq=False, repr=False)
class _Pending:
    """One credential of a chunk between its read and its write (no repr: holds a secret)."""

    index: int
    entry: InventoryEntry
    plan: WritePlan | None = None
    previous_cert: str | None = None
    exists: bool = False
    system: str = ""
    #: Which store (``SecretStore.scope``: Vault's address and namespace), for the target.
    scope: StoreScope | None = None
    #: The generated credential, ready to certify (set by :func:`_prepare_one`).
    request: CertifyRequest | None = None


class _Checked:
    """Generation parameters already checked against their preset (shared by the workers)."""

    def __init__(self, entropy_source: EntropySource | None) -> None:
        self.entropy_source = entropy_source
        self._done: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def params(self, entry: InventoryEntry) -> tuple[str, GenerationParameters]:
        preset_id = get_preset(entry.preset).id
        params = _params_for(preset_id, entry.parameters, None)
        key = (preset_id, repr(params))
        with self._lock:
            known = key in self._done
        if not known:
            check_preset(preset_id, params, entropy_source=self.entropy_source)
            with self._lock:
                self._done.add(key)
        return preset_id, params


def rotate_many(
    client: AuthorityClient,
    entries: Sequence[InventoryEntry],
    *,
    store_for: Callable[[StoreURI], SecretStore],
    concurrency: int = 8,
    chunk_size: int = DEFAULT_CHUNK,
    dry_run: bool = False,
    entropy_source: EntropySource | None = None,
    target_for: Callable[[InventoryEntry], CredentialTarget] | None = None,
    on_done: Callable[[int, BulkOutcome], None] | None = None,
) -> list[BulkOutcome]:
    """:func:`ensure_rotated` for many credentials, batched (``passgeni rotate``).

    Same decisions, write order and guarantees per credential as
    :func:`ensure_rotated`, in fewer round trips. Per chunk of ``chunk_size``
    credentials:

    1. read each store once: the read that plans the write also decides
       whether the credential is already this epoch's (then it is kept);
       backends with ``plan_absent`` list a folder instead of reading each
       absent secret. Then generate locally;
    2. certify the whole chunk with one ``POST /api/generate-batch`` per
       distinct parameters and one ``POST /api/generate-certificates``;
    3. per credential, ``concurrency`` at a time: verify its certificate
       offline (a refused one is revoked), write the value (check-and-set),
       then the metadata, then revoke the previous certificate. A failed
       write revokes the new certificate (reason ``not stored``) and leaves
       the previous credential current (:func:`store_certified`).

    The next chunk is read and certified while the previous one is written
    (the first chunks are smaller, so that writing starts early).
    Entries with a target (a PostgreSQL role), and every entry of a dry run,
    go through :func:`ensure_rotated` one by one (``target_for`` opens an
    entry's target, by default :func:`open_target`). If the run is
    interrupted, certificates whose write had not started are revoked.

    ``store_for(uri)`` returns the store to use for ``uri`` in the calling
    thread (it is called from worker threads). Returns one outcome per entry,
    in order: a :class:`RotationResult`, or the exception that entry failed
    with (nothing is raised for one entry's failure). ``on_done(index,
    outcome)`` is called (serialised) as each entry finishes.
    """
    if chunk_size < 1:
        raise InvalidRequest("chunk_size must be at least 1")
    results: list[BulkOutcome | None] = [None] * len(entries)
    lock = threading.Lock()

    def finish(index: int, outcome: BulkOutcome) -> None:
        with lock:
            results[index] = outcome
            if on_done is not None:
                on_done(index, outcome)

    def guarded(index: int, work: Callable[[], BulkOutcome | None]) -> None:
        try:
            outcome = work()
        except Exception as exc:  # one entry's failure must not stop the others
            outcome = exc
        if outcome is not None:
            finish(index, outcome)

    singles = [i for i, e in enumerate(entries) if dry_run or e.target_kind is not None]
    batched = [i for i, e in enumerate(entries) if not dry_run and e.target_kind is None]
    chunks = _chunked(batched, chunk_size)
    checked = _Checked(entropy_source)
    writes: list[tuple[Future[None], str]] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:

        def prepare(chunk: list[int]) -> list[tuple[_Pending, Future[None]]]:
            return _submit_prepares(client, entries, chunk, store_for, checked, pool, guarded)

        try:
            prepared = prepare(chunks[0]) if chunks else []
            for k in range(len(chunks)):
                ready = _collect(prepared)
                if k + 1 < len(chunks):
                    # Queued before this chunk's writes: read and generate while they run.
                    prepared = prepare(chunks[k + 1])
                requests = [item.request for item in ready if item.request is not None]
                for item, issued in zip(ready, issue_many(client, requests), strict=True):
                    if isinstance(issued, PassgeniError):
                        finish(item.index, issued)
                        continue
                    write = functools.partial(_write_one, client, item, issued, store_for)
                    writes.append((pool.submit(guarded, item.index, write), issued.cert_id))
            for i in singles:
                single = functools.partial(
                    _single, client, entries[i], store_for, dry_run, entropy_source, target_for
                )
                pool.submit(guarded, i, single)
            pool.shutdown(wait=True)  # in the try: an interrupt while waiting is handled too
        except BaseException:
            # Interrupted: certificates whose write never started are revoked
            # (their credentials will never be stored); running writes finish;
            # queued reads and one-by-one entries do not start.
            cancelled = [cert_id for future, cert_id in writes if future.cancel()]
            pool.shutdown(wait=False, cancel_futures=True)
            for cert_id in cancelled:
                _revoke_quietly(client, cert_id, REVOKE_REASON_NOT_STORED)
            raise
    missing = [i for i, r in enumerate(results) if r is None]
    for i in missing:  # pragma: no cover - every path finishes its entries
        results[i] = StoreError(f"{entries[i].destination}: not processed")
    return [r for r in results if r is not None]


def _chunked(indexes: list[int], size: int) -> list[list[int]]:
    """Chunks of ``size``, ramping up from a quarter of it so the first writes start early."""
    out: list[list[int]] = []
    step = max(1, size // 4)
    start = 0
    while start < len(indexes):
        out.append(indexes[start : start + step])
        start += step
        step = min(size, step * 2)
    return out


def _single(
    client: AuthorityClient,
    entry: InventoryEntry,
    store_for: Callable[[StoreURI], SecretStore],
    dry_run: bool,
    entropy_source: EntropySource | None,
    target_for: Callable[[InventoryEntry], CredentialTarget] | None,
) -> RotationResult:
    target = None
    try:
        if entry.target_kind is not None:
            target = (
                target_for(entry)
                if target_for is not None
                else open_target(entry.target_kind, entry.target_options)
            )
        return ensure_rotated(
            client,
            store_for(entry.destination),
            entry.destination,
            entry.preset,
            keeper=entry.keeper,
            parameters=entry.parameters,
            label=entry.label,
            target=target,
            entropy_source=entropy_source,
            dry_run=dry_run,
        )
    finally:
        if target is not None:
            target.close()


def _submit_prepares(
    client: AuthorityClient,
    entries: Sequence[InventoryEntry],
    chunk: list[int],
    store_for: Callable[[StoreURI], SecretStore],
    checked: _Checked,
    pool: ThreadPoolExecutor,
    guarded: Callable[[int, Callable[[], BulkOutcome | None]], None],
) -> list[tuple[_Pending, Future[None]]]:
    """Start a chunk: plans of listed-absent secrets now, reads and generation in the pool."""
    by_scheme: dict[str, list[int]] = {}
    for i in chunk:
        by_scheme.setdefault(entries[i].destination.scheme, []).append(i)
    known: dict[int, WritePlan] = {}
    systems: dict[str, str] = {}
    scopes: dict[str, StoreScope | None] = {}
    for scheme, indexes in by_scheme.items():
        try:
            store = store_for(entries[indexes[0]].destination)
        except Exception:  # noqa: S112 - each entry reports it from its own read
            continue
        systems[scheme] = store.system
        scopes[scheme] = store_scope(store)
        plans = plan_absent(store, [entries[i].destination for i in indexes])
        known.update({i: p for i, p in zip(indexes, plans, strict=True) if p is not None})
    out: list[tuple[_Pending, Future[None]]] = []
    for i in chunk:
        entry = entries[i]
        item = _Pending(
            index=i,
            entry=entry,
            plan=known.get(i),
            system=systems.get(entry.destination.scheme, ""),
            scope=scopes.get(entry.destination.scheme),
        )
        work = functools.partial(_prepare_one, client, item, store_for, checked)
        out.append((item, pool.submit(guarded, i, work)))
    return out


def _prepare_one(
    client: AuthorityClient,
    item: _Pending,
    store_for: Callable[[StoreURI], SecretStore],
    checked: _Checked,
) -> RotationResult | None:
    """Plan one write (one store read unless listed absent) and generate its credential.

    Returns a result when the credential is this epoch's and is kept.
    """
    entry = item.entry
    keeper = check_keeper(entry.keeper)
    preset_id, params = checked.params(entry)
    label = keeper_label(keeper, entry.label)
    plan = item.plan
    if plan is None:
        store = store_for(entry.destination)
        item.system = store.system
        item.scope = store_scope(store)
        plan = store.prepare(entry.destination)
        current = plan.current
        if current is not None and current.password is not None:
            item.exists = True
            if current.refs is not None:
                verdict = assess(client, store.system, current, preset=preset_id, keeper=keeper)
                verdict.raise_for_error()  # never rotate because the authority could not be asked
                if verdict.value_covered:
                    return _keep(store, entry.destination, current, verdict, keeper, None, False)
                if not verdict.has(REVOKED):
                    item.previous_cert = current.refs.cert_id
    item.request = CertifyRequest(
        parameters=params,
        entropy_source=checked.entropy_source,
        preset=preset_id,
        target=entry.destination.target(item.system, plan.next_version, item.scope),
        label=label,
    )
    item.plan = plan
    return None


def _collect(prepared: list[tuple[_Pending, Future[None]]]) -> list[_Pending]:
    """The chunk's credentials ready to certify (kept or failed ones are finished)."""
    out = []
    for item, future in prepared:
        future.result()
        if item.request is not None:
            out.append(item)
    return out


def _write_one(
    client: AuthorityClient,
    item: _Pending,
    issued: PendingCertificate,
    store_for: Callable[[StoreURI], SecretStore],
) -> RotationResult:
    """Verify the certificate (revoked if refused), then store in the nothing-lost order."""
    assert item.plan is not None and item.request is not None
    entry = item.entry
    result = accept_issued(client, issued)
    stored = store_certified(
        client,
        store_for(entry.destination),
        item.plan,
        result,
        outcome="rotated" if item.exists else "created",
        previous_cert=item.previous_cert,
    )
    return _result_of(stored, check_keeper(entry.keeper), item.request.preset)
