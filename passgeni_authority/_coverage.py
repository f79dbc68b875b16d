"""Coverage: what submitted scans found (``POST /api/scans``, ``passgeni scan --submit``).

Each credential (by URI) counts once, as its latest submission states it; a credential
without a good certificate (any status but ``valid`` and ``expiring``) is a gap. A team
key's scans are its team's; a personal key's its own; an operator sees all. Stored:
references and statuses only (:func:`._scans.parse_scan` refuses anything else).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from passgeni_core.client import ScanReceiptBody

from ._dashboard_data import Viewer, page_count
from ._db import scan_findings, scan_reports
from ._models import Principal
from ._scans import COVERED, parse_scan
from ._storage import Storage
from ._util import db_unavailable, instant, now

__all__ = ["Coverage", "Finding"]


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


class Coverage:
    """Submitted scans: recording them, and each credential's latest state."""

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

    def record(self, principal: Principal, body: Mapping[str, Any]) -> ScanReceiptBody:
        """Store a submitted scan; its receipt."""
        report = parse_scan(body)
        at = now(self.settings)
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

    def _scope(self, viewer: Viewer) -> ColumnElement[bool]:
        r = scan_reports.c
        if viewer.operator:
            return true()
        if viewer.team_id is not None:
            return r.team_id == viewer.team_id
        return and_(r.team_id.is_(None), r.user_id == viewer.user_id)

    def _latest(self, viewer: Viewer) -> Any:
        """The id of each URI's latest finding in the viewer's scans."""
        f, r = scan_findings.c, scan_reports.c
        return (
            select(func.max(f.id).label("id"))
            .join(scan_reports, r.id == f.report_id)
            .where(self._scope(viewer))
            .group_by(f.uri)
            .subquery()
        )

    def _query(self, viewer: Viewer, status: str | None, *columns: Any) -> Any:
        f, r = scan_findings.c, scan_reports.c
        latest = self._latest(viewer)
        query = (
            select(*columns)
            .select_from(scan_findings)
            .join(latest, latest.c.id == f.id)
            .join(scan_reports, r.id == f.report_id)
        )
        if status == "gap":
            query = query.where(f.status.not_in(tuple(COVERED)))
        elif status is not None:
            query = query.where(f.status == status)
        return query

    def counts(self, viewer: Viewer) -> Counter[str]:
        """Credentials by latest status."""
        f = scan_findings.c
        with self._read() as conn:
            rows = conn.execute(
                self._query(viewer, None, f.status, func.count()).group_by(f.status)
            ).all()
        return Counter({status: n for status, n in rows})

    def _rows(self, viewer: Viewer, status: str | None) -> Any:
        f, r = scan_findings.c, scan_reports.c
        gap_first = case((f.status.in_(tuple(COVERED)), 1), else_=0)
        return self._query(
            viewer,
            status,
            f.uri,
            f.status,
            f.reasons,
            f.cert_id,
            f.standard,
            f.expires_at,
            r.scanned_at,
            r.user_id,
        ).order_by(gap_first, f.status, f.uri)

    def page(
        self, viewer: Viewer, status: str | None, page: int, size: int
    ) -> tuple[list[Finding], int, int]:
        """One page of the credentials (gaps first), how many match, the page shown."""
        with self._read() as conn:
            total = conn.execute(
                select(func.count()).select_from(
                    self._query(viewer, status, scan_findings.c.id).subquery()
                )
            ).scalar_one()
            page = min(max(page, 1), page_count(total, size))
            rows = conn.execute(
                self._rows(viewer, status).limit(size).offset((page - 1) * size)
            ).all()
        return [Finding(*r) for r in rows], total, page

    def all(self, viewer: Viewer, status: str | None) -> Iterator[Finding]:
        with self._read() as conn:
            for r in conn.execute(self._rows(viewer, status)).yield_per(1000):
                yield Finding(*r)
