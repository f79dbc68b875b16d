"""What the dashboard reads and writes: its sessions and the certificates a viewer may see.

Who sees what: a team key's dashboard shows its team; a personal key its own
certificates; an operator key (``create-key --operator``) every team. A dashboard session
is a random id in an ``HttpOnly`` cookie; the database keeps only its SHA-256, the key's
public prefix and the form (CSRF) token, never the API key. Every page re-checks that the
key is not revoked and the session not expired.

Everything is counted, filtered and paginated in SQL, so a view over 10,000 certificates
reads one page of rows and a few aggregates. A certificate's target and label live in
its signed token: they are copied once into ``dashboard_targets`` (tokens never change)
the first time a dashboard looks, then joined. Submitted scans: :mod:`._coverage`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from passgeni_core import MalformedToken, Unauthenticated
from passgeni_core.crypto import unverified_payload

from ._db import (
    ANOMALY_KIND,
    api_keys,
    certificates,
    dashboard_sessions,
    dashboard_targets,
    usage_events,
    users,
)
from ._models import Principal
from ._storage import Storage
from ._util import db_unavailable, now

__all__ = [
    "BUCKETS",
    "SESSION_LIFETIME",
    "CertFilters",
    "CertRow",
    "DashboardData",
    "Summary",
    "Viewer",
    "page_count",
]

#: How long a dashboard sign-in lasts (absolute, not sliding).
SESSION_LIFETIME = timedelta(minutes=30)
#: A certificate's state on the dashboard, least serious first.
BUCKETS: tuple[str, ...] = (
    "valid",
    "expiring_90",
    "expiring_60",
    "expiring_30",
    "expired",
    "revoked",
)
_SYNC_BATCH = 2000


@dataclass(frozen=True)
class Viewer:
    """Who a dashboard session shows data for."""

    user_id: str
    team_id: str | None
    key_prefix: str
    operator: bool
    csrf: str
    expires_at: datetime

    @property
    def scope_label(self) -> str:
        if self.operator:
            return "operator: every team"
        return f"team {self.team_id}" if self.team_id else f"user {self.user_id}"


@dataclass(frozen=True)
class CertRow:
    """One certificate as the dashboard lists it (public facts only)."""

    cert_id: str
    owner: str
    team: str | None
    standard: str
    standards_met: tuple[str, ...]
    bucket: str
    issued_at: datetime
    expires_at: datetime
    system: str
    path: str
    label: str


@dataclass(frozen=True)
class CertFilters:
    """The certificates view's filters (``None``: any). ``bucket`` ``expiring``: 30/60/90."""

    standard: str | None = None
    bucket: str | None = None
    system: str | None = None
    query: str | None = None


@dataclass
class Summary:
    """Counts of the viewer's certificates: by bucket, by standard and by store."""

    total: int = 0
    buckets: Counter[str] = field(default_factory=Counter)
    by_standard: dict[str, Counter[str]] = field(default_factory=dict)
    by_system: dict[str, Counter[str]] = field(default_factory=dict)


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class DashboardData:
    """The dashboard's storage operations, over the authority's one :class:`Storage`."""

    def __init__(self, storage: Storage, settings: Any) -> None:
        self.storage = storage
        self.settings = settings

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.storage.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise db_unavailable(exc) from None

    def now(self) -> datetime:
        return now(self.settings)

    # -- sessions ------------------------------------------------------------------------

    def key_scope(self, prefix: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(select(api_keys.c.scope).where(api_keys.c.prefix == prefix)).first()
        return None if row is None else row.scope

    def open_session(self, principal: Principal) -> tuple[str, Viewer]:
        """A new session for an authenticated key: the cookie value and its viewer."""
        sid = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        at = self.now()
        scope = self.key_scope(principal.key_prefix)
        expires = at + SESSION_LIFETIME
        with self.storage.transaction() as conn:
            conn.execute(delete(dashboard_sessions).where(dashboard_sessions.c.expires_at <= at))
            conn.execute(
                insert(dashboard_sessions).values(
                    id_hash=_digest(sid),
                    key_prefix=principal.key_prefix,
                    user_id=principal.user_id,
                    team_id=principal.team_id,
                    scope=scope,
                    csrf=csrf,
                    created_at=at,
                    expires_at=expires,
                )
            )
        viewer = Viewer(
            principal.user_id,
            principal.team_id,
            principal.key_prefix,
            scope == "operator",
            csrf,
            expires,
        )
        return sid, viewer

    def viewer(self, sid: str | None) -> Viewer:
        """The viewer of a session cookie. Raises Unauthenticated: none, expired, key revoked."""
        if not sid or len(sid) > 100:
            raise Unauthenticated("sign in with an API key")
        at = self.now()
        with self._read() as conn:
            row = conn.execute(
                select(dashboard_sessions, api_keys.c.revoked_at)
                .join(api_keys, api_keys.c.prefix == dashboard_sessions.c.key_prefix)
                .where(dashboard_sessions.c.id_hash == _digest(sid))
            ).first()
        if row is None or row.expires_at <= at:
            raise Unauthenticated("the dashboard session has ended: sign in again")
        if row.revoked_at is not None:
            raise Unauthenticated("the API key of this session was revoked")
        return Viewer(
            row.user_id,
            row.team_id,
            row.key_prefix,
            row.scope == "operator",
            row.csrf,
            row.expires_at,
        )

    def close_session(self, sid: str) -> None:
        with self.storage.transaction() as conn:
            conn.execute(
                delete(dashboard_sessions).where(dashboard_sessions.c.id_hash == _digest(sid))
            )

    @staticmethod
    def csrf_ok(viewer: Viewer, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(viewer.csrf.encode(), token.encode())

    # -- certificates ----------------------------------------------------------------------

    def sync_targets(self) -> int:
        """Copy the target and label of certificates not yet in ``dashboard_targets``."""
        c, t = certificates.c, dashboard_targets.c
        copied = 0
        while True:
            with self._read() as conn:
                have = conn.execute(select(func.count()).select_from(dashboard_targets))
                if (
                    have.scalar_one()
                    == conn.execute(select(func.count()).select_from(certificates)).scalar_one()
                ):
                    return copied
                rows = conn.execute(
                    select(c.cert_id, c.token)
                    .outerjoin(dashboard_targets, t.cert_id == c.cert_id)
                    .where(t.cert_id.is_(None))
                    .limit(_SYNC_BATCH)
                ).all()
            if not rows:
                return copied
            values = [{"cert_id": r.cert_id, **_target_of(r.token)} for r in rows]
            try:
                with self.storage.transaction() as conn:
                    conn.execute(insert(dashboard_targets), values)
            except IntegrityError:  # another process copied some first: next request
                return copied
            copied += len(values)
            if len(rows) < _SYNC_BATCH:
                return copied

    def _scope(self, viewer: Viewer) -> ColumnElement[bool]:
        if viewer.operator:
            return true()
        if viewer.team_id is not None:
            return certificates.c.team_id == viewer.team_id
        return certificates.c.owner_user_id == viewer.user_id

    def _bucket(self, at: datetime) -> Any:
        c = certificates.c
        return case(
            (c.status == "revoked", literal("revoked")),
            (c.expires_at <= at, literal("expired")),
            (c.expires_at <= at + timedelta(days=30), literal("expiring_30")),
            (c.expires_at <= at + timedelta(days=60), literal("expiring_60")),
            (c.expires_at <= at + timedelta(days=90), literal("expiring_90")),
            else_=literal("valid"),
        )

    def _where(self, viewer: Viewer, filters: CertFilters, at: datetime) -> ColumnElement[bool]:
        c, t = certificates.c, dashboard_targets.c
        conds: list[ColumnElement[bool]] = [self._scope(viewer)]
        if filters.standard:
            conds.append(c.compliance_standard == filters.standard)
        if filters.bucket == "expiring":
            conds.append(self._bucket(at).in_(("expiring_30", "expiring_60", "expiring_90")))
        elif filters.bucket:
            conds.append(self._bucket(at) == filters.bucket)
        if filters.system:
            conds.append(t.system == filters.system)
        if filters.query:
            like = (
                "%"
                + filters.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            conds.append(
                or_(
                    *(
                        col.like(like, escape="\\")
                        for col in (c.cert_id, c.owner_user_id, t.path, t.label)
                    )
                )
            )
        return and_(*conds)

    def _joined(self, *columns: Any) -> Any:
        return select(*columns).select_from(
            certificates.outerjoin(
                dashboard_targets, dashboard_targets.c.cert_id == certificates.c.cert_id
            )
        )

    def summary(self, viewer: Viewer) -> Summary:
        """Counts by bucket, by standard and by store (one grouped query)."""
        at = self.now()
        bucket = self._bucket(at).label("bucket")
        system = func.coalesce(dashboard_targets.c.system, "-").label("system")
        with self._read() as conn:
            rows = conn.execute(
                self._joined(certificates.c.compliance_standard, system, bucket, func.count())
                .where(self._scope(viewer))
                .group_by(certificates.c.compliance_standard, system, bucket)
            ).all()
        out = Summary()
        for standard, sys_name, b, n in rows:
            out.total += n
            out.buckets[b] += n
            out.by_standard.setdefault(standard, Counter())[b] += n
            out.by_system.setdefault(sys_name, Counter())[b] += n
        out.by_standard = dict(sorted(out.by_standard.items()))
        out.by_system = dict(sorted(out.by_system.items()))
        return out

    def issuance(self, viewer: Viewer, *, days: int = 30) -> list[tuple[str, int]]:
        """Certificates issued per day over the last ``days`` days (oldest first)."""
        at = self.now()
        start = (at - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        with self._read() as conn:
            stamps = conn.execute(
                select(certificates.c.issued_at).where(
                    self._scope(viewer), certificates.c.issued_at >= start
                )
            ).scalars()
            counts = Counter(s.date().isoformat() for s in stamps)
        days_out = [(start + timedelta(days=i)).date().isoformat() for i in range(days)]
        return [(d, counts[d]) for d in days_out]

    def _rows(self, viewer: Viewer, filters: CertFilters) -> tuple[Any, datetime]:
        at = self.now()
        c, t = certificates.c, dashboard_targets.c
        query = (
            self._joined(
                c.cert_id,
                c.owner_user_id,
                c.team_id,
                c.compliance_standard,
                c.standards_met,
                self._bucket(at).label("bucket"),
                c.issued_at,
                c.expires_at,
                t.system,
                t.path,
                t.label,
            )
            .where(self._where(viewer, filters, at))
            .order_by(c.issued_at.desc(), c.cert_id.desc())
        )
        return query, at

    def certificate_page(
        self, viewer: Viewer, filters: CertFilters, page: int, size: int
    ) -> tuple[list[CertRow], int, int]:
        """One page of the matching certificates, how many match, and the page shown."""
        query, at = self._rows(viewer, filters)
        with self._read() as conn:
            matching = conn.execute(
                self._joined(func.count()).where(self._where(viewer, filters, at))
            ).scalar_one()
            page = min(max(page, 1), page_count(matching, size))
            rows = conn.execute(query.limit(size).offset((page - 1) * size)).all()
        return [_cert_row(r) for r in rows], matching, page

    def all_certificates(self, viewer: Viewer, filters: CertFilters) -> Iterator[CertRow]:
        """Every matching certificate, newest first (the CSV export)."""
        query, _at = self._rows(viewer, filters)
        with self._read() as conn:
            for r in conn.execute(query).yield_per(1000):
                yield _cert_row(r)

    def targets_page(
        self, viewer: Viewer, page: int, size: int
    ) -> tuple[list[tuple[str, str, int, CertRow]], int, int]:
        """Each target with its number of certificates and its latest one; a page of them."""
        c, t = certificates.c, dashboard_targets.c
        grouped = (
            self._joined(t.system, t.path, func.count().label("n"), func.max(c.issued_at))
            .where(self._scope(viewer), t.system.is_not(None))
            .group_by(t.system, t.path)
        )
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(grouped.subquery())).scalar_one()
            page = min(max(page, 1), page_count(total, size))
            groups = conn.execute(
                grouped.order_by(t.system, t.path).limit(size).offset((page - 1) * size)
            ).all()
        latest: dict[tuple[str, str], CertRow] = {}
        if groups:
            query, _at = self._rows(viewer, CertFilters())
            wanted = tuple_(t.system, t.path).in_([(g[0], g[1]) for g in groups])
            with self._read() as conn:
                for r in conn.execute(query.where(wanted)):
                    latest.setdefault((r.system, r.path), _cert_row(r))
        lines = [(s, p, n, latest[(s, p)]) for s, p, n, _ in groups]
        return lines, total, page

    def anomalies(self, viewer: Viewer) -> list[tuple[str, datetime, int | None]]:
        """Anomaly flags (many certificates in 24 h) of the viewer's users, newest first."""
        who: Any = true()
        if not viewer.operator:
            if viewer.team_id is not None:
                members = select(users.c.id).where(users.c.team_id == viewer.team_id)
                who = usage_events.c.user_id.in_(members)
            else:
                who = usage_events.c.user_id == viewer.user_id
        with self._read() as conn:
            rows = conn.execute(
                select(usage_events.c.user_id, usage_events.c.at, usage_events.c.detail)
                .where(ANOMALY_KIND, who)
                .order_by(usage_events.c.at.desc())
                .limit(200)
            ).all()
        return [(r.user_id, r.at, json.loads(r.detail or "{}").get("count_24h")) for r in rows]


def _cert_row(r: Any) -> CertRow:
    return CertRow(
        cert_id=r.cert_id,
        owner=r.owner_user_id,
        team=r.team_id,
        standard=r.compliance_standard,
        standards_met=tuple(s for s in r.standards_met.split(",") if s),
        bucket=r.bucket,
        issued_at=r.issued_at,
        expires_at=r.expires_at,
        system=r.system or "-",
        path=r.path or "-",
        label=r.label or "",
    )


def _target_of(token: str) -> dict[str, str]:
    try:
        payload = unverified_payload(token)
    except MalformedToken:
        return {"system": "-", "path": "-", "label": ""}
    raw = payload.get("target")
    target: dict[str, Any] = raw if isinstance(raw, dict) else {}
    label = payload.get("label")
    return {
        "system": str(target.get("system") or "-")[:32],
        "path": str(target.get("path") or "-")[:512],
        "label": label[:200] if isinstance(label, str) else "",
    }
