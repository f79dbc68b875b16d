"""Plans and quotas: the plans as data (table ``plans``), the plan of each user
or team, and the monthly certificate quota every issuance is charged against.

A user's plan is its own, else its team's; a team key's is its team's, else
its user's. A user or team with no plan has no quota (a self-hosted
authority's default). The plan's owner is charged: a team plan counts the
whole team's certificates, a user plan the user's.

The quota is counted in the shared ``rate_limit_buckets`` table (bucket
``q:<user|team>:<id>:<YYYY-MM>``) by one conditional statement in the
issuing transaction, so every process of the authority enforces it, and a
request that does not fit is refused whole without being counted. A bucket
starts from the certificates already stored that month (the truth, e.g.
after a plan change); certificates planned but not stored (their session
was redeemed meanwhile) are refunded. Usage as reported (``usage``) is
always the certificates stored this calendar month (UTC).

Plan definitions are read at most every :data:`PLAN_CACHE_SECONDS` per process:
an edit (``passgeni authority plan``) applies everywhere within that time.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from passgeni_core import InvalidRequest, NotFound, QuotaExceeded

from . import _hot, _sql
from ._db import certificates, plans, rate_limit_buckets, teams, users
from ._events import Refusals, UsageEvents
from ._models import Principal
from ._settings import AuthoritySettings
from ._storage import Storage
from ._util import iso, now

__all__ = ["PLAN_CACHE_SECONDS", "Plan", "Plans", "month_bounds"]

PLAN_CACHE_SECONDS = 5.0
_PLAN_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class Plan:
    name: str
    #: ``None``: unlimited.
    monthly_certificates: int | None
    team_audit: bool
    description: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "monthly_certificates": self.monthly_certificates,
            "team_audit": self.team_audit,
            "description": self.description,
        }


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) of ``at``: its first instant and the next month's."""
    at = at.astimezone(UTC)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


class Plans:
    """Plan definitions, plan assignment, quota charging and usage."""

    def __init__(
        self,
        settings: AuthoritySettings,
        storage: Storage,
        events: UsageEvents,
        refusals: Refusals,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.events = events
        self.refusals = refusals
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Plan]] | None = None

    # -- definitions ------------------------------------------------------------------

    def _definitions(self, conn: Connection) -> dict[str, Plan]:
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < PLAN_CACHE_SECONDS:
            return cached[1]
        rows = conn.execute(select(plans)).all()
        found = {
            r.name: Plan(r.name, r.monthly_certificates, bool(r.team_audit), r.description)
            for r in rows
        }
        self._cache = (time.monotonic(), found)
        return found

    def list(self) -> list[Plan]:
        with self.storage.transaction() as conn:
            self._cache = None
            return sorted(self._definitions(conn).values(), key=lambda p: p.name)

    def define(
        self,
        name: str,
        *,
        monthly_certificates: int | str | None = "keep",
        team_audit: bool | None = None,
        description: str | None = None,
    ) -> Plan:
        """Create or edit a plan (``monthly_certificates=None``: unlimited)."""
        if not _PLAN_RE.match(name):
            raise InvalidRequest("a plan name is 1-32 lower-case letters, digits, _ and -")
        if (
            monthly_certificates != "keep"
            and monthly_certificates is not None
            and (not isinstance(monthly_certificates, int) or monthly_certificates < 0)
        ):
            raise InvalidRequest("monthly certificates must be a number >= 0 or unlimited")
        with self.storage.transaction() as conn:
            exists = conn.execute(select(plans).where(plans.c.name == name)).first()
            values: dict[str, Any] = {}
            if monthly_certificates != "keep":
                values["monthly_certificates"] = monthly_certificates
            if team_audit is not None:
                values["team_audit"] = int(team_audit)
            if description is not None:
                values["description"] = description[:200]
            if exists is None:
                conn.execute(insert(plans).values(name=name, **values))
            elif values:
                conn.execute(update(plans).where(plans.c.name == name).values(**values))
            self._cache = None
            return self._definitions(conn)[name]

    # -- assignment -----------------------------------------------------------------------

    def assign(self, subject: str, plan: str | None, *, kind: str | None = None) -> dict[str, Any]:
        """Set the plan of a user or a team (``kind``: ``user``/``team``; found if
        ``None``). ``plan=None`` removes it. Records a ``plan_changed`` event."""
        at = now(self.settings)
        with self.storage.transaction() as conn:
            if plan is not None and plan not in self._definitions(conn):
                self._cache = None
                if plan not in self._definitions(conn):
                    raise InvalidRequest(f"no plan {plan[:32]!r} (see passgeni authority plans)")
            is_user = conn.execute(select(users.c.id).where(users.c.id == subject)).first()
            is_team = conn.execute(select(teams.c.id).where(teams.c.id == subject)).first()
            if kind is None:
                if is_user and is_team:
                    raise InvalidRequest(f"{subject} is a user and a team: say --user or --team")
                kind = "team" if is_team else "user"
            if (kind == "team" and not is_team) or (kind == "user" and not is_user):
                raise NotFound(f"no {kind} {subject[:64]!r}")
            table = teams if kind == "team" else users
            previous = conn.execute(select(table.c.plan).where(table.c.id == subject)).scalar()
            conn.execute(update(table).where(table.c.id == subject).values(plan=plan))
            # The month's quota bucket starts again from the certificates stored.
            start, _end = month_bounds(at)
            conn.execute(
                rate_limit_buckets.delete().where(
                    rate_limit_buckets.c.bucket == f"q:{kind}:{subject}:{start:%Y-%m}"
                )
            )
            self.events.record(
                conn,
                "plan_changed",
                user_id=subject if kind == "user" else None,
                ip=None,
                now=at,
                detail={kind: subject, "plan": plan or "", "previous": previous or ""},
            )
        return {"kind": kind, "subject": subject, "plan": plan, "previous": previous}

    def _applied(self, conn: Connection, principal: Principal) -> tuple[Plan, str, str] | None:
        """``(plan, "user"|"team", owner id)`` of the plan that applies to the caller."""
        row = _hot.execute(conn, _sql.USER_PLANS, {"user_id": principal.user_id}).fetchone()
        if row is None:
            return None
        user_plan, team_id, team_plan = row
        options = [("user", principal.user_id, user_plan), ("team", team_id, team_plan)]
        if principal.team_id is not None:
            options.reverse()
        for kind, owner, name in options:
            if name is not None and owner is not None:
                plan = self._definitions(conn).get(name)
                if plan is not None:
                    return plan, kind, owner
        return None

    # -- quota ----------------------------------------------------------------------------

    def _used(self, conn: Connection, kind: str, owner: str, start: datetime) -> int:
        column = certificates.c.team_id if kind == "team" else certificates.c.owner_user_id
        return int(
            conn.execute(
                select(func.count())
                .select_from(certificates)
                .where(column == owner, certificates.c.issued_at >= start)
            ).scalar_one()
        )

    def charge(
        self, conn: Connection, principal: Principal, count: int, at: datetime, *, ip: str | None
    ) -> str | None:
        """Charge ``count`` certificates to the caller's monthly quota in ``conn``;
        the bucket charged (for :meth:`refund`), or ``None`` when no quota applies.

        Raises:
            QuotaExceeded: they do not all fit (nothing is charged).
        """
        applied = self._applied(conn, principal) if count > 0 else None
        if applied is None or applied[0].monthly_certificates is None:
            return None
        plan, kind, owner = applied
        limit = plan.monthly_certificates
        assert limit is not None
        start, end = month_bounds(at)
        bucket = f"q:{kind}:{owner}:{start:%Y-%m}"
        stored = _hot.execute(conn, _sql.BUCKET_VALUE, {"bucket": bucket}).fetchone()
        init = 0 if stored is not None else self._used(conn, kind, owner, start)
        params = {
            "bucket": bucket,
            "init": float(init),
            "step": float(count),
            "cap": float(limit),
            "end": end.timestamp() + 86400,
        }
        if _hot.execute(conn, _sql.QUOTA, params).fetchone() is not None:
            return bucket
        used = init if stored is None else int(float(stored[0]))
        self.refusals.note(
            None,
            "quota_exceeded",
            user_id=principal.user_id,
            ip=ip,
            at=at,
            detail={"key": principal.key_prefix, "plan": plan.name, kind: owner},
        )
        raise QuotaExceeded(
            f"plan {plan.name} allows {limit} certificates per calendar month; {kind} "
            f"{owner} has used {min(used, limit)} in {start:%Y-%m} and asked for {count} more; "
            f"the quota resets at {iso(end)}"
        )

    @staticmethod
    def refund(conn: Connection, bucket: str, count: int) -> None:
        """Give back ``count`` certificates charged but not stored."""
        if count > 0:
            _hot.execute(conn, _sql.REFUND, {"bucket": bucket, "step": float(count), "exp": 0.0})

    def usage(
        self,
        principal: Principal | None = None,
        *,
        subject: str | None = None,
        kind: str | None = None,
    ) -> dict[str, Any]:
        """This month's quota use of the caller (or of a user/team by name)."""
        at = now(self.settings)
        start, end = month_bounds(at)
        with self.storage.transaction() as conn:
            if principal is None:
                assert subject is not None
                is_team = kind == "team" or (
                    kind is None
                    and conn.execute(select(teams.c.id).where(teams.c.id == subject)).first()
                    and not conn.execute(select(users.c.id).where(users.c.id == subject)).first()
                )
                if is_team:
                    row = conn.execute(select(teams.c.plan).where(teams.c.id == subject)).first()
                    if row is None:
                        raise NotFound(f"no team {subject[:64]!r}")
                    plan = self._definitions(conn).get(row[0]) if row[0] else None
                    applied = (plan, "team", subject) if plan is not None else None
                    owner_kind, owner = "team", subject
                else:
                    if (
                        conn.execute(select(users.c.id).where(users.c.id == subject)).first()
                        is None
                    ):
                        raise NotFound(f"no user {subject[:64]!r}")
                    applied = self._applied(conn, Principal(subject, None, ""))
                    owner_kind, owner = "user", subject
            else:
                applied = self._applied(conn, principal)
                owner_kind, owner = (
                    ("team", principal.team_id)
                    if principal.team_id
                    else ("user", principal.user_id)
                )
            if applied is not None:
                _plan, owner_kind, owner = applied
            used = self._used(conn, owner_kind, owner, start)
        plan_obj = applied[0] if applied is not None else None
        limit = plan_obj.monthly_certificates if plan_obj is not None else None
        return {
            "plan": plan_obj.name if plan_obj is not None else None,
            "subject": {"kind": owner_kind, "id": owner},
            "month": f"{start:%Y-%m}",
            "used": used,
            "limit": limit,
            "remaining": None if limit is None else max(0, limit - used),
            "resets_at": iso(end),
        }
