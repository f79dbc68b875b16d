"""The audit trail for operators and teams: usage events read back (``GET
/api/events``, ``passgeni authority events``), anomalies, retention, and the
periodic job that writes aggregated refusals and prunes old events.

Who sees what: a personal key its user's events; a team key its team
members' (when the team's plan allows team-wide audit, or the team has no
plan); an operator's key (``create-key --operator``) every tenant's, and
the events of no user (failed logins with unknown keys, anonymous views).

Paging is by event id (``after``: ascending, what ``--follow`` needs; every
answer says ``next_after``). Filters by type, user, team, key prefix, IP and
time. ``usage_events`` has no index but its primary key (every issuance
writes three events, so every index costs the hot path): a filter other than
``after`` scans, which is what a retention limit keeps small.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.sql.elements import ColumnElement

from passgeni_core import InvalidRequest

from ._db import plans, teams, usage_events, users
from ._events import Refusals
from ._models import Principal
from ._settings import AuthoritySettings
from ._storage import Storage
from ._util import iso, now

__all__ = ["EVENT_TYPES", "EventLog", "Maintenance", "event_body"]

log = logging.getLogger("passgeni_authority")

#: Every kind of usage event the authority writes.
EVENT_TYPES = (
    "api_access",
    "certificate_issued",
    "certificate_view",
    "certificate_revoked",
    "anomaly",
    "rate_limited",
    "auth_failed",
    "quota_exceeded",
    "api_key_created",
    "api_key_revoked",
    "plan_changed",
)

_PREFIX_RE = re.compile(r"^[a-z2-7]{8}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_IP_RE = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")


def event_body(row: Any) -> dict[str, Any]:
    """One event as the API and the CLI show it."""
    try:
        detail = json.loads(row.detail) if row.detail else {}
    except ValueError:
        detail = {"raw": str(row.detail)[:200]}
    return {
        "id": row.id,
        "type": row.kind,
        "at": iso(row.at),
        "user": row.user_id,
        "ip": row.ip,
        "detail": detail,
    }


class EventLog:
    """Reading the trail, page by page, in the caller's scope."""

    def __init__(self, settings: AuthoritySettings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage

    def _scope(self, conn: Any, principal: Principal) -> ColumnElement[bool] | None:
        if principal.operator:
            return None
        if principal.team_id is not None:
            row = conn.execute(
                select(plans.c.team_audit)
                .select_from(teams.join(plans, plans.c.name == teams.c.plan))
                .where(teams.c.id == principal.team_id)
            ).first()
            if row is None or row[0]:  # no plan, or a plan with team-wide audit
                members = select(users.c.id).where(users.c.team_id == principal.team_id)
                return usage_events.c.user_id.in_(members)
        return usage_events.c.user_id == principal.user_id

    def page(
        self,
        principal: Principal,
        *,
        types: Sequence[str] = (),
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        ip: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Events in ``principal``'s scope matching every filter, oldest first.

        Raises:
            InvalidRequest: an unknown type, a malformed name, prefix or IP,
                naive dates, ``limit`` outside 1-1000.
            AuthorityUnavailable: the database failed.
        """
        for kind in types:
            if kind not in EVENT_TYPES:
                raise InvalidRequest(f"type must be among {', '.join(EVENT_TYPES)}")
        for what, name in (("user", user), ("team", team)):
            if name is not None and not _NAME_RE.match(name):
                raise InvalidRequest(f"{what} is not a user or team name")
        if key is not None and not _PREFIX_RE.match(key):
            raise InvalidRequest("key must be an API key's 8-character public prefix")
        if ip is not None and not _IP_RE.match(ip):
            raise InvalidRequest("ip must be an IPv4 or IPv6 address")
        if not 1 <= limit <= 1000 or after < 0:
            raise InvalidRequest("limit must be 1-1000 and after >= 0")
        for value in (since, until):
            if value is not None and value.tzinfo is None:
                raise InvalidRequest("since/until must carry a time zone (e.g. ...Z)")
        conds: list[Any] = [usage_events.c.id > after]
        if types:
            conds.append(usage_events.c.kind.in_(list(types)))
        if user is not None:
            conds.append(usage_events.c.user_id == user)
        if team is not None:
            members = select(users.c.id).where(users.c.team_id == team)
            conds.append(usage_events.c.user_id.in_(members))
        if key is not None:
            conds.append(usage_events.c.detail.like(f'%"key":"{key}"%'))
        if ip is not None:
            conds.append(usage_events.c.ip == ip)
        if since is not None:
            conds.append(usage_events.c.at >= since)
        if until is not None:
            conds.append(usage_events.c.at <= until)
        with self.storage.transaction() as conn:
            scope = self._scope(conn, principal)
            if scope is not None:
                conds.append(scope)
            rows = conn.execute(
                select(usage_events)
                .where(and_(*conds))
                .order_by(usage_events.c.id)
                .limit(limit + 1)
            ).all()
        more = len(rows) > limit
        items = [event_body(r) for r in rows[:limit]]
        return {
            "items": items,
            "next_after": items[-1]["id"] if items else after,
            "has_more": more,
        }

    def anomalies(self, principal: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest anomaly flags in the caller's scope, newest first."""
        with self.storage.transaction() as conn:
            scope = self._scope(conn, principal)
            conds: list[Any] = [usage_events.c.kind == "anomaly"]
            if scope is not None:
                conds.append(scope)
            rows = conn.execute(
                select(usage_events)
                .where(and_(*conds))
                .order_by(usage_events.c.id.desc())
                .limit(limit)
            ).all()
        return [event_body(r) for r in rows]

    def prune(self, older_than: datetime) -> int:
        """Delete usage events before ``older_than`` (never a certificate,
        nor anything else). How many were deleted."""
        with self.storage.transaction() as conn:
            deleted = conn.execute(
                delete(usage_events).where(usage_events.c.at < older_than)
            ).rowcount
        return int(deleted or 0)


class Maintenance:
    """The periodic job of one process: writes the aggregated refusals that are
    due (:class:`~passgeni_authority._events.Refusals`) and, with a retention
    setting, prunes events older than ``event_retention_days``."""

    def __init__(
        self, settings: AuthoritySettings, storage: Storage, log_: EventLog, refusals: Refusals
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.events = log_
        self.refusals = refusals
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: datetime | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="passgeni-maintenance", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.maintenance_seconds):
            try:
                self.tick()
            except Exception as exc:  # logged, retried at the next tick
                log.warning("maintenance failed: %s", type(exc).__name__)

    def tick(self, *, everything: bool = False) -> dict[str, int]:
        """One round now: ``{"refusals": events written, "pruned": events deleted}``."""
        at = now(self.settings)
        written = 0
        if self.refusals.due(at, everything=everything, peek=True):
            with self.storage.transaction() as conn:
                written = self.refusals.flush(conn, at, everything=everything)
        pruned = 0
        days = self.settings.event_retention_days
        if days is not None and (
            self._last_prune is None or at - self._last_prune >= timedelta(hours=1) or everything
        ):
            pruned = self.events.prune(at - timedelta(days=days))
            self._last_prune = at
            if pruned:
                log.info("pruned %d usage events older than %d days", pruned, days)
        return {"refusals": written, "pruned": pruned}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.tick(everything=True)  # what is still counted in memory
        except Exception as exc:
            log.warning("could not write the last aggregated refusals: %s", type(exc).__name__)
