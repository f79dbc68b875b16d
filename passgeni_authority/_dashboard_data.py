"""What the dashboard reads and writes: its sessions, the certificates a viewer may see,
submitted scans (coverage) and anomalies.

Who sees what: a team key's dashboard shows its team; a personal key its own
certificates; an operator key (``create-key --operator``) every team. A dashboard session
is a random id in an ``HttpOnly`` cookie; the database keeps only its SHA-256, the key's
public prefix and the form (CSRF) token, never the API key. Every page re-checks that the
key is not revoked and the session not expired.

Certificates are read without their tokens where possible: a certificate's target and
label live in its signed token, parsed once per certificate and cached (tokens never
change), so a page over 10,000 certificates reads the small columns only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from passgeni_core import MalformedToken, Unauthenticated
from passgeni_core.client import ScanReceiptBody
from passgeni_core.crypto import unverified_payload

from ._db import (
    ANOMALY_KIND,
    api_keys,
    certificates,
    dashboard_sessions,
    scan_findings,
    scan_reports,
    usage_events,
    users,
)
from ._models import Principal
from ._scans import COVERED, MAX_FINDINGS, SCAN_STATUSES, parse_scan
from ._storage import Storage
from ._util import LRU, db_unavailable, instant, now

__all__ = [
    "BUCKETS",
    "SESSION_LIFETIME",
    "CertRow",
    "DashboardData",
    "Finding",
    "Viewer",
    "bucket_of",
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


def bucket_of(status: str, expires_at: datetime, at: datetime) -> str:
    """``valid``, ``expiring_30/60/90`` (days left), ``expired`` or ``revoked``."""
    if status == "revoked":
        return "revoked"
    left = expires_at - at
    if left <= timedelta(0):
        return "expired"
    for days in (30, 60, 90):
        if left <= timedelta(days=days):
            return f"expiring_{days}"
    return "valid"


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
class Finding:
    """A credential's latest scan result: where it is and how it stands."""

    uri: str
    status: str
    reasons: str
    cert_id: str | None
    standard: str | None
    expires_at: datetime | None
    scanned_at: datetime
    submitted_by: str

    @property
    def covered(self) -> bool:
        return self.status in COVERED

    @property
    def system(self) -> str:
        return self.uri.split("://", 1)[0] if "://" in self.uri else "-"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class DashboardData:
    """The dashboard's storage operations, over the authority's one :class:`Storage`."""

    def __init__(self, storage: Storage, settings: Any) -> None:
        self.storage = storage
        self.settings = settings
        # cert_id -> (system, path, label): parsed from the immutable token once.
        self._targets = LRU(200_000)

    # -- reads ---------------------------------------------------------------------------

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
        return sid, Viewer(
            principal.user_id,
            principal.team_id,
            principal.key_prefix,
            scope == "operator",
            csrf,
            expires,
        )

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

    def _cert_scope(self, viewer: Viewer) -> Any:
        if viewer.operator:
            return true()
        if viewer.team_id is not None:
            return certificates.c.team_id == viewer.team_id
        return certificates.c.owner_user_id == viewer.user_id

    def certificates(self, viewer: Viewer) -> list[CertRow]:
        """Every certificate the viewer may see, newest first."""
        at = self.now()
        c = certificates.c
        with self._read() as conn:
            rows = conn.execute(
                select(
                    c.cert_id,
                    c.owner_user_id,
                    c.team_id,
                    c.compliance_standard,
                    c.standards_met,
                    c.status,
                    c.issued_at,
                    c.expires_at,
                )
                .where(self._cert_scope(viewer))
                .order_by(c.issued_at.desc(), c.cert_id.desc())
            ).all()
            missing = [r.cert_id for r in rows if r.cert_id not in self._targets]
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                for cert_id, token in conn.execute(
                    select(c.cert_id, c.token).where(c.cert_id.in_(chunk))
                ):
                    self._targets.put(cert_id, _target_of(token))
        out = []
        for r in rows:
            system, path, label = self._targets.get(r.cert_id) or ("-", "-", "")
            out.append(
                CertRow(
                    cert_id=r.cert_id,
                    owner=r.owner_user_id,
                    team=r.team_id,
                    standard=r.compliance_standard,
                    standards_met=tuple(s for s in r.standards_met.split(",") if s),
                    bucket=bucket_of(r.status, r.expires_at, at),
                    issued_at=r.issued_at,
                    expires_at=r.expires_at,
                    system=system,
                    path=path,
                    label=label,
                )
            )
        return out

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

    # -- scans -------------------------------------------------------------------------------

    def record_scan(self, principal: Principal, body: Mapping[str, Any]) -> ScanReceiptBody:
        """Store a submitted scan (``POST /api/scans``); its receipt."""
        report = parse_scan(body)
        at = self.now()
        failing = sum(1 for f in report["credentials"] if f["status"] not in COVERED)
        with self.storage.transaction() as conn:
            report_id = conn.execute(
                insert(scan_reports)
                .values(
                    user_id=principal.user_id,
                    team_id=principal.team_id,
                    submitted_at=at,
                    scanned_at=report["scanned_at"] or at,
                    require=report["require"],
                    expiring_days=report["expiring_days"],
                    credentials=len(report["credentials"]),
                    failing=failing,
                )
                .returning(scan_reports.c.id)
            ).scalar_one()
            if report["credentials"]:
                conn.execute(
                    insert(scan_findings),
                    [{"report_id": report_id, **f} for f in report["credentials"]],
                )
        return ScanReceiptBody(
            scan_id=int(report_id),
            credentials=len(report["credentials"]),
            failing=failing,
            submitted_at=instant(at),
        )

    def findings(self, viewer: Viewer) -> list[Finding]:
        """Each credential's latest submitted result (by URI), worst first."""
        r, f = scan_reports.c, scan_findings.c
        cond: Any = true()
        if not viewer.operator:
            cond = (
                r.team_id == viewer.team_id
                if viewer.team_id
                else and_(r.team_id.is_(None), r.user_id == viewer.user_id)
            )
        with self._read() as conn:
            rows = conn.execute(
                select(
                    f.uri,
                    f.status,
                    f.reasons,
                    f.cert_id,
                    f.standard,
                    f.expires_at,
                    r.scanned_at,
                    r.user_id,
                )
                .join(scan_reports, r.id == f.report_id)
                .where(cond)
                .order_by(r.submitted_at.desc(), f.id)
                .limit(MAX_FINDINGS * 5)
            ).all()
        latest: dict[str, Finding] = {}
        for row in rows:
            if row.uri not in latest:
                latest[row.uri] = Finding(
                    row.uri,
                    row.status,
                    row.reasons,
                    row.cert_id,
                    row.standard,
                    row.expires_at,
                    row.scanned_at,
                    row.user_id,
                )
        order = {s: i for i, s in enumerate(sorted(SCAN_STATUSES - COVERED))}
        return sorted(latest.values(), key=lambda x: (x.covered, order.get(x.status, 0), x.uri))


def _target_of(token: str) -> tuple[str, str, str]:
    try:
        payload = unverified_payload(token)
    except MalformedToken:
        return ("-", "-", "")
    raw = payload.get("target")
    target: dict[str, Any] = raw if isinstance(raw, dict) else {}
    label = payload.get("label")
    return (
        str(target.get("system") or "-"),
        str(target.get("path") or "-"),
        label if isinstance(label, str) else "",
    )


def page_of(items: Sequence[Any], page: int, size: int) -> tuple[Sequence[Any], int]:
    """One page of ``items`` and the number of pages."""
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return items[(page - 1) * size : page * size], pages
