"""Audit and anomalies: a caller's certificates page by page, and the flag
raised when a user issues unusually many certificates in a day."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from passgeni_core import InvalidRequest, UnknownPreset, get_preset
from passgeni_core.client import AnomalyBody, AuditPageBody

from . import _hot, _sql, _tlog
from ._certificates import Certificates, scope
from ._db import ANOMALY_KIND, certificates, usage_events, users
from ._events import UsageEvents
from ._models import Principal
from ._settings import AuthoritySettings
from ._storage import Storage
from ._util import instant, now

__all__ = ["Audit"]

log = logging.getLogger("passgeni_authority")

_STATUSES = ("valid", "expired", "revoked")


def _calling(
    callback: Callable[[dict[str, Any]], None], flag: dict[str, Any]
) -> Callable[[], None]:
    return lambda: callback(flag)


class Audit:
    """The audit listing, and the anomaly check every issuance runs."""

    def __init__(
        self,
        settings: AuthoritySettings,
        storage: Storage,
        certs: Certificates,
        events: UsageEvents,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.certs = certs
        self.events = events
        # user id -> time of its latest anomaly event (skips the 24 h count).
        self._anomaly_seen: dict[str, datetime] = {}
        # Read inside a transaction that rolled back: maybe never committed.
        storage.on_rollback(self._anomaly_seen.clear)
        #: Called once an anomaly event is committed, with its facts (metrics, the webhook).
        self.on_anomaly: list[Callable[[dict[str, Any]], None]] = []

    def check_anomaly(self, conn: Connection, user_id: str, ip: str | None, at: datetime) -> None:
        """Record an ``anomaly`` event when ``user_id`` issued more than the
        threshold in 24 h (in the issuing transaction; never blocking)."""
        since = at - timedelta(hours=24)
        # Already flagged in the last 24 h: nothing to count (a bulk rotation
        # would otherwise count its whole day's certificates on every request).
        seen = self._anomaly_seen.get(user_id)
        if seen is not None and seen > since:
            return
        params = {"user_id": user_id, "since": _hot.dt(conn, since)}
        already = _hot.execute(conn, _sql.LATEST_ANOMALY, params).fetchone()
        if already is not None:
            self._anomaly_seen[user_id] = _hot.parse_dt(already[0])
            return
        count = int(_hot.execute(conn, _sql.COUNT_24H, params).fetchone()[0])
        if count > self.settings.anomaly_threshold_24h:
            # Recorded, never blocking: bulk rotation is legitimate; an auditor decides.
            log.warning("anomaly: user %s issued %d certificates in 24 h", user_id, count)
            self.events.record(
                conn, "anomaly", user_id=user_id, ip=ip, now=at, detail={"count_24h": count}
            )
            flag = {
                "type": "anomaly",
                "user": user_id,
                "ip": ip,
                "count_24h": count,
                "threshold_24h": self.settings.anomaly_threshold_24h,
                "detected_at": at.isoformat(),
            }
            for callback in self.on_anomaly:
                _hot.after_commit(conn, _calling(callback, flag))

    def page(
        self,
        principal: Principal,
        *,
        standard: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPageBody:
        """See :meth:`AuthorityService.audit`."""
        names: tuple[str, ...] = ()
        if standard is not None:
            try:
                preset = get_preset(standard)
            except UnknownPreset:
                raise InvalidRequest(f"unknown standard {standard[:40]!r}") from None
            # Either name finds both: certificates issued before the claim ids
            # list preset ids.
            names = (preset.claim_id, preset.id)
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}")
        if page < 1 or not 1 <= page_size <= 500:
            raise InvalidRequest("page must be >= 1 and page_size between 1 and 500")
        for value in (since, until):
            if value is not None and value.tzinfo is None:
                raise InvalidRequest("since/until must carry a time zone (e.g. ...Z)")
        at = now(self.settings)
        conds = [scope(principal)]
        if names:
            conds.append(or_(*(certificates.c.standards_met.like(f"%,{n},%") for n in names)))
        if status == "revoked":
            conds.append(certificates.c.status == "revoked")
        elif status == "valid":
            conds += [certificates.c.status != "revoked", certificates.c.expires_at > at]
        elif status == "expired":
            conds += [certificates.c.status != "revoked", certificates.c.expires_at <= at]
        if since is not None:
            conds.append(certificates.c.issued_at >= since)
        if until is not None:
            conds.append(certificates.c.issued_at <= until)
        where = and_(*conds)
        with self.storage.transaction() as conn:
            total = conn.execute(
                select(func.count()).select_from(certificates).where(where)
            ).scalar_one()
            rows = (
                conn.execute(
                    select(certificates)
                    .where(where)
                    .order_by(certificates.c.issued_at.desc(), certificates.c.cert_id.desc())
                    .limit(page_size)
                    .offset((page - 1) * page_size)
                )
                .mappings()
                .all()
            )
            who: Any
            if principal.team_id is not None:
                members = select(users.c.id).where(users.c.team_id == principal.team_id)
                who = usage_events.c.user_id.in_(members)
            else:
                who = usage_events.c.user_id == principal.user_id
            log = _tlog.entries_of_many(conn, [row["cert_id"] for row in rows])
            anomalies = conn.execute(
                select(usage_events.c.user_id, usage_events.c.at, usage_events.c.detail)
                .where(ANOMALY_KIND, who)
                .order_by(usage_events.c.at.desc())
                .limit(100)
            ).all()
        return AuditPageBody(
            items=[
                self.certs.record(row, at, log.get(row["cert_id"], {})).to_wire() for row in rows
            ],
            page=page,
            page_size=page_size,
            total=total,
            anomalies=[
                AnomalyBody(
                    user=a.user_id,
                    detected_at=instant(a.at),
                    count_24h=json.loads(a.detail or "{}").get("count_24h"),
                )
                for a in anomalies
            ],
        )
