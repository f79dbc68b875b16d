"""The usage-event trail (``usage_events``): every access, issuance, view and
revocation, written in the transaction of what it records."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from . import _hot, _sql
from ._storage import Storage

__all__ = ["Refusals", "UsageEvents", "access_detail", "detail_json"]

log = logging.getLogger("passgeni_authority")

_PLAIN_RE = re.compile(r"[A-Za-z0-9 ./_:@+-]*")


def detail_json(detail: Mapping[str, Any]) -> str:
    """A usage event's detail as compact JSON; plain strings written directly
    (every request records one: ``{"endpoint": ..., "key": ...}``)."""
    if all(
        isinstance(v, str) and _PLAIN_RE.fullmatch(v) and _PLAIN_RE.fullmatch(k)
        for k, v in detail.items()
    ):
        return "{" + ",".join(f'"{k}":"{v}"' for k, v in detail.items()) + "}"
    return json.dumps(dict(detail), separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def access_detail(endpoint: str, key_prefix: str) -> str:
    """The detail of an ``api_access`` event, serialised once per endpoint and key
    (every request records one)."""
    return detail_json({"endpoint": endpoint, "key": key_prefix})


class UsageEvents:
    """Writes usage events: in the caller's transaction, or queued for the next
    group commit (:meth:`record_later`)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        # Usage events queued for the next group commit (see record_later).
        self._later: list[dict[str, Any]] = []
        self._later_tasks: set[asyncio.Task[int]] = set()

    def row(
        self,
        kind: str,
        *,
        user_id: str | None,
        ip: str | None,
        now: datetime,
        detail: Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """A ``usage_events`` row; ``detail`` as a mapping, or already as JSON."""
        return {
            "kind": kind,
            "user_id": user_id,
            "ip": ip,
            "at": _hot.dt_for(self.storage.dialect, now),
            "detail": detail if isinstance(detail, str) or not detail else detail_json(detail),
        }

    def record(
        self,
        conn: Connection,
        kind: str,
        *,
        user_id: str | None,
        ip: str | None,
        now: datetime,
        detail: Mapping[str, Any] | str | None = None,
    ) -> None:
        """Record an event in ``conn``'s transaction."""
        row = self.row(kind, user_id=user_id, ip=ip, now=now, detail=detail)
        if kind == "anomaly":
            # Read back by later requests of the same group commit (see _audit).
            _hot.execute(conn, _sql.INSERT_EVENT, row)
        else:
            # Same transaction, written with the group's other events at commit.
            _hot.defer(conn, _sql.INSERT_EVENT, row)

    def record_later(self, row: dict[str, Any]) -> None:  # on the event loop
        """Queue a usage event for the next group commit, without waiting for it.

        For requests that write nothing else (opening sessions on the fast
        path): their access is recorded in the next commit, a few
        milliseconds later. A crash in between loses those events (never a
        certificate: issuance always waits for its commit).
        """
        assert self.storage.grouped
        with self._lock:
            self._later.append(row)
            first = len(self._later) == 1
        if first:
            # Kept referenced until done (the loop holds tasks only weakly).
            task = asyncio.get_running_loop().create_task(self.storage.write(self._flush_later))
            self._later_tasks.add(task)
            task.add_done_callback(self._later_done)

    def _flush_later(self, conn: Connection) -> int:
        with self._lock:
            rows, self._later = self._later, []
        for row in rows:
            _hot.defer(conn, _sql.INSERT_EVENT, row)
        return len(rows)

    async def wait_for_queued(self) -> None:
        """Wait until every event queued by :meth:`record_later` is committed.

        For a clean shutdown (the app's lifespan): the event loop cancels
        whatever is still pending when it stops.
        """
        while self._later_tasks:
            await asyncio.gather(*list(self._later_tasks), return_exceptions=True)

    def _later_done(self, task: asyncio.Task[int]) -> None:
        self._later_tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            log.warning("usage events of opened sessions were not recorded: the commit failed")

    def close(self) -> None:
        """Write what is still queued (the loop that would have is gone)."""
        if self._later:
            with contextlib.suppress(Exception), self.storage.transaction() as conn:
                self._flush_later(conn)


#: Refusals of one kind, caller and address are written at most once per this.
AGGREGATE_SECONDS = 60.0
#: Distinct refusal streams remembered at most (past that, all are written out).
_MAX_STREAMS = 10_000


class Refusals:
    """Refused requests (``rate_limited``, ``auth_failed``, ``quota_exceeded``) as
    aggregated usage events: a storm does not write a row per refused request.

    The first refusal of a stream (kind, user, IP, endpoint, key prefix) is
    written at once, with ``count: 1``; the next ones are counted in memory and
    written as one event (``count``, ``first``, ``last``) at most every
    :data:`AGGREGATE_SECONDS`, by the next refusal after that or the periodic
    flush (:meth:`flush`). A process that stops hard loses what it had not
    written yet (counts, never a certificate).
    """

    def __init__(self, events: UsageEvents) -> None:
        self.events = events
        self._lock = threading.Lock()
        # stream -> [window start, count since, first, last, user, ip, detail]
        self._open: dict[tuple[Any, ...], list[Any]] = {}
        self._next_flush = datetime.min.replace(tzinfo=UTC)
        #: Called for every refusal noted: ``(kind, detail)`` (metrics).
        self.observer: Callable[[str, Mapping[str, Any]], None] | None = None

    def note(
        self,
        conn: Connection | None,
        kind: str,
        *,
        user_id: str | None,
        ip: str | None,
        at: datetime,
        detail: Mapping[str, Any],
    ) -> None:
        """Count one refusal; written now (in ``conn``) if it opens a stream."""
        if self.observer is not None:
            self.observer(kind, detail)
        stream = (kind, user_id, ip, *sorted(detail.items()))
        with self._lock:
            entry = self._open.get(stream)
            opened = entry is None
            if entry is None:
                if len(self._open) >= _MAX_STREAMS:
                    self._open.clear()  # forgetting counts only under a flood of streams
                self._open[stream] = [
                    at,
                    0 if conn is not None else 1,
                    at,
                    at,
                    user_id,
                    ip,
                    dict(detail),
                ]
            else:
                entry[1] += 1
                entry[3] = at
        if opened and conn is not None:
            self.events.record(
                conn, kind, user_id=user_id, ip=ip, now=at, detail={**detail, "count": 1}
            )
        if conn is not None and at >= self._next_flush:
            self.flush(conn, at)

    def due(
        self, at: datetime, *, everything: bool = False, peek: bool = False
    ) -> list[tuple[str, list[Any]]]:
        """Take the streams whose aggregation period ended (or all); ``peek``:
        only say whether any has something to write (nothing is taken)."""
        out: list[tuple[str, list[Any]]] = []
        limit = at - timedelta(seconds=AGGREGATE_SECONDS)
        with self._lock:
            if peek:
                return [
                    (stream[0], entry)
                    for stream, entry in self._open.items()
                    if entry[1] > 0 and (everything or entry[0] <= limit)
                ]
            self._next_flush = at + timedelta(seconds=1)
            for stream, entry in list(self._open.items()):
                if not everything and entry[0] > limit:
                    continue
                if entry[1] > 0:
                    out.append((stream[0], list(entry)))
                if entry[1] == 0 or everything:
                    del self._open[stream]
                else:
                    entry[0], entry[1], entry[2] = at, 0, at
        return out

    def flush(self, conn: Connection, at: datetime, *, everything: bool = False) -> int:
        """Write the aggregated refusals that are due, in ``conn``; how many events."""
        due = self.due(at, everything=everything)
        for kind, (_start, count, first, last, user_id, ip, detail) in due:
            self.events.record(
                conn,
                kind,
                user_id=user_id,
                ip=ip,
                now=last,
                detail={
                    **detail,
                    "count": count,
                    "first": first.isoformat(),
                    "last": last.isoformat(),
                },
            )
        return len(due)
