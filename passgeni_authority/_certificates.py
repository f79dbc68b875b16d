"""Stored certificates: their public records, their status, and revocation."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, RowMapping

from passgeni_core import NotFound, RateLimited, checked_text
from passgeni_core.client import CertificateStatus

from . import _limits, _tlog
from ._db import certificates
from ._events import Refusals, UsageEvents
from ._models import CertificateRecord, Principal
from ._settings import AuthoritySettings
from ._signing import b64url_decode
from ._storage import Storage
from ._util import now

__all__ = ["Certificates", "scope"]

_CERT_ID_RE = re.compile(r"^pg_[a-z2-7]{24}$")


def _token_claims(token: str) -> dict[str, Any]:
    """The claims of one of our own stored tokens (not a verification: the row
    is ours, and clients verify the signature against the JWKS)."""
    claims: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return claims


def scope(principal: Principal) -> Any:
    """The certificates a caller may see: its team's for a team key, else its own."""
    if principal.team_id is not None:
        return certificates.c.team_id == principal.team_id
    return certificates.c.owner_user_id == principal.user_id


class Certificates:
    """Reading and revoking stored certificates."""

    def __init__(
        self,
        settings: AuthoritySettings,
        storage: Storage,
        events: UsageEvents,
        limiter: _limits.RateLimiter | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.events = events
        self.limiter = limiter
        self.refusals = refusals
        #: Called with the standard of each certificate newly revoked (metrics).
        self.on_revoked: list[Callable[[str], None]] = []

    def url(self, cert_id: str) -> str:
        return f"{self.settings.public_url}/cert/{cert_id}"

    def record(
        self, row: RowMapping, at: datetime, log: dict[str, int] | None = None
    ) -> CertificateRecord:
        """The public record of a stored row, its status as of ``at`` (with its
        transparency-log leaves by kind, when given)."""
        payload = _token_claims(row["token"])
        status: CertificateStatus
        if row["status"] == "revoked":
            status = "revoked"
        else:
            status = "valid" if row["expires_at"] > at else "expired"
        return CertificateRecord(
            cert_id=row["cert_id"],
            cert_url=self.url(row["cert_id"]),
            status=status,
            revoked_at=row["revoked_at"],
            revocation_reason=row["revocation_reason"],
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            compliance_standard=row["compliance_standard"],
            standards_met=tuple(payload.get("standards_met", ())),
            entropy_bits=payload["entropy_bits"],
            naive_entropy_bits=payload.get("naive_entropy_bits"),
            parameters=payload.get("parameters", {}),
            entropy_source=payload.get("entropy_source", {}),
            label=payload.get("label"),
            target=payload.get("target"),
            token=row["token"],
            kid=row["kid"],
            issuer=payload.get("iss", ""),
            subject=payload.get("sub", ""),
            mapping_version=payload.get("mapping_version", ""),
            credential_commitment=payload.get("credential_commitment"),
            provenance=payload.get("provenance"),
            log_index=None if log is None else log.get("issuance"),
            revocation_log_index=None if log is None else log.get("revocation"),
        )

    def get(self, cert_id: str, *, ip: str | None = None) -> CertificateRecord:
        """See :meth:`AuthorityService.get_certificate`.

        Every lookup counts towards the per-IP view limit, an unknown id too
        (enumerating ids costs what viewing does).
        """
        at = now(self.settings)
        limiter = self.limiter
        limited: RateLimited | None = None
        row = None
        log = None
        with self.storage.transaction() as conn:
            if limiter is not None and limiter.limits.views_per_ip_per_minute is not None:
                limited, quota = limiter.view(conn, ip, at.timestamp())
                _limits.report([quota])
                if limited is not None:
                    self._note_view_refusal(conn, ip, at, "GET /cert")
            if limited is None and _CERT_ID_RE.match(cert_id):
                row = (
                    conn.execute(select(certificates).where(certificates.c.cert_id == cert_id))
                    .mappings()
                    .first()
                )
                log = None if row is None else _tlog.entries_of(conn, cert_id)
                if row is not None:
                    self._record_view(conn, cert_id, ip, at)
        if limited is not None:
            raise limited
        if row is None:
            raise NotFound(f"no certificate {cert_id[:40]!r}")
        return self.record(row, at, log)

    def _record_view(self, conn: Connection, cert_id: str, ip: str | None, at: datetime) -> None:
        """One public view of a certificate, in the usage-event trail."""
        self.events.record(
            conn, "certificate_view", user_id=None, ip=ip, now=at, detail={"cert_id": cert_id}
        )

    def _note_view_refusal(
        self, conn: Connection, ip: str | None, at: datetime, endpoint: str
    ) -> None:
        """A view refused by the per-IP limit, in the aggregated refusal events."""
        if self.refusals is not None:
            self.refusals.note(
                conn,
                "rate_limited",
                user_id=None,
                ip=ip,
                at=at,
                detail={"endpoint": endpoint, "policy": "views-ip"},
            )

    def get_many(
        self, cert_ids: list[str], *, ip: str | None = None
    ) -> list[CertificateRecord | NotFound | RateLimited]:
        """The public records of ``cert_ids``, in order (``NotFound`` for an unknown id).

        What :meth:`get` does for each id, in one transaction and three queries:
        every id counts as one view towards the per-IP view limit, and every
        found certificate records its ``certificate_view``. Over the limit, the
        ids from the first one refused on answer ``RateLimited`` (their views
        were not counted; the caller asks again for them later), the others
        their records: a lookup never waits, and what was counted is answered.
        """
        at = now(self.settings)
        limiter = self.limiter
        limited: RateLimited | None = None
        allowed = len(cert_ids)
        rows: dict[str, RowMapping] = {}
        logs: dict[str, dict[str, int]] = {}
        with self.storage.transaction() as conn:
            if limiter is not None and limiter.limits.views_per_ip_per_minute is not None:
                quotas = []
                for n in range(len(cert_ids)):
                    limited, quota = limiter.view(conn, ip, at.timestamp())
                    quotas.append(quota)
                    if limited is not None:
                        allowed = n
                        break
                _limits.report(quotas[-1:])
                if limited is not None:
                    self._note_view_refusal(conn, ip, at, "POST /api/certificates/lookup")
            counted = cert_ids[:allowed]
            wanted = sorted({c for c in counted if _CERT_ID_RE.match(c)})
            if wanted:
                found = conn.execute(
                    select(certificates).where(certificates.c.cert_id.in_(wanted))
                ).mappings()
                rows = {str(r["cert_id"]): r for r in found}
                logs = _tlog.entries_of_many(conn, sorted(rows))
                for cert_id in counted:
                    if cert_id in rows:
                        self._record_view(conn, cert_id, ip, at)
        out: list[CertificateRecord | NotFound | RateLimited] = [
            self.record(rows[c], at, logs.get(c, {}))
            if c in rows
            else NotFound(f"no certificate {c[:40]!r}")
            for c in counted
        ]
        if limited is not None:
            out += [limited] * (len(cert_ids) - allowed)
        return out

    def revoke(
        self, principal: Principal, cert_id: str, reason: object, *, ip: str | None = None
    ) -> CertificateRecord:
        """See :meth:`AuthorityService.revoke_certificate`. The first revocation
        records a ``certificate_revoked`` event (with the caller's IP) and calls
        :attr:`on_revoked` once committed; a repeated one changes nothing."""
        reason = checked_text(reason, name="reason", max_length=500)
        at = now(self.settings)
        with self.storage.transaction() as conn:
            changed = conn.execute(
                update(certificates)
                .where(
                    certificates.c.cert_id == cert_id,
                    scope(principal),
                    certificates.c.status != "revoked",
                )
                .values(status="revoked", revoked_at=at, revocation_reason=reason)
            ).rowcount
            if changed:
                # The revocation's leaf, in the revocation's own transaction.
                _tlog.append_revoked(conn, cert_id, at, reason)
            row = (
                conn.execute(
                    select(certificates).where(certificates.c.cert_id == cert_id, scope(principal))
                )
                .mappings()
                .first()
            )
            log = None if row is None else _tlog.entries_of(conn, cert_id)
            if row is not None and changed:
                self.events.record(
                    conn,
                    "certificate_revoked",
                    user_id=principal.user_id,
                    ip=ip,
                    now=at,
                    detail={"cert_id": cert_id, "key": principal.key_prefix},
                )
        if row is None:
            raise NotFound(f"no certificate {cert_id[:40]!r}")
        if changed:
            for callback in self.on_revoked:
                callback(row["compliance_standard"])
        return self.record(row, at, log)
