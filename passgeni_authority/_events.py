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
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from . import _hot, _sql
from ._storage import Storage

__all__ = ["UsageEvents", "access_detail", "detail_json"]

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
