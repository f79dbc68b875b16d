"""The certificate registry: which credential each certificate proves, and when to renew.

Built from two sources the caller already holds:

* the authority's audit (:meth:`AuthorityClient.iter_audit`): every certificate
  of the caller or team, with its status and the location it was issued for;
* optionally a coverage scan of the stores (:func:`passgeni_core.scan`): where
  each credential really is, which certificate its metadata names, and whether
  it is still covered (valid, drifted, expired...). Credentials without any
  certificate appear too, so the registry shows the gaps.

Outputs: CSV (a spreadsheet or CMDB import), JSON, and iCalendar (RFC 5545,
through the ``icalendar`` library: CRLF lines folded at 75 octets, text escaped):
for every unrevoked certificate an event at its **rotation date** under the written
policy (issuance + the period :data:`~._policy.ROTATION` sets for the certificate's
standard and the account type, e.g. 90 days for privileged PCI DSS or FIPS 140-3
accounts; none where the standard sets no period) and one at its **expiry**, each
with a display alarm ``remind_days`` ahead, so renewals land in the team's
calendar. A rotation date on or after the expiry gives no separate event (the
expiry comes first). Revoked certificates get no event. Pure: the CLI does the I/O.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import InvalidRequest, PassgeniError
from .._untrusted import csv_cell, printable
from ..client import CertificateRecord
from ..model import get_preset
from ._policy import ROTATION
from ._scan import CoverageReport

__all__ = ["ACCOUNT_TYPES", "REGISTRY_CSV_FIELDS", "Registry", "RegistryEntry", "build_registry"]

REGISTRY_CSV_FIELDS = (
    "credential",
    "cert_id",
    "cert_url",
    "status",
    "coverage",
    "standard",
    "standards_met",
    "label",
    "system",
    "path",
    "version",
    "issued_at",
    "expires_at",
    "renew_by",
    "revoked_at",
    "revocation_reason",
    "detail",
)
PRODID = "-//PassGeni//Certificate registry//EN"
#: Whose rotation period the calendar follows (the policy's two columns).
ACCOUNT_TYPES = ("service", "privileged")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class RegistryEntry:
    """One credential <-> certificate row. Public facts only."""

    #: Where the credential lives (a store URI), when known.
    credential: str | None = None
    cert_id: str | None = None
    cert_url: str | None = None
    #: The authority's status (valid / expired / revoked), or ``uncertified``.
    status: str = "uncertified"
    #: The coverage scan's verdict for the credential ("" when not scanned).
    coverage: str = ""
    standard: str | None = None
    standards_met: tuple[str, ...] = ()
    label: str | None = None
    system: str | None = None
    path: str | None = None
    version: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    detail: str = ""

    def renew_by(self, remind_days: int) -> datetime | None:
        return None if self.expires_at is None else self.expires_at - timedelta(days=remind_days)

    def rotation_days(self, accounts: str, policy: tuple[str, ...] = ()) -> int | None:
        """The written policy's rotation period for ``accounts`` (``service`` or
        ``privileged``): the shortest of the ``policy`` standards' periods, as the policy
        adopts it, or, with no policy given, the period of this certificate's own standard.
        ``None``: no period is set (rotation on events only)."""
        ids = policy or (() if self.standard is None else (self.standard,))
        periods = []
        for standard in ids:
            try:
                rotation = ROTATION.get(get_preset(standard).id)
            except PassgeniError:  # a standard this version does not know: no period claimed
                continue
            if rotation is not None:
                days = (
                    rotation.privileged_days if accounts == "privileged" else rotation.service_days
                )
                if days is not None:
                    periods.append(days)
        return min(periods) if periods else None

    def rotate_by(self, accounts: str, policy: tuple[str, ...] = ()) -> datetime | None:
        """Issuance + the rotation period, if the policy sets one and it falls before expiry."""
        days = self.rotation_days(accounts, policy)
        if days is None or self.issued_at is None:
            return None
        when = self.issued_at + timedelta(days=days)
        return when if self.expires_at is None or when < self.expires_at else None

    def to_dict(self, remind_days: int = 30) -> dict[str, Any]:
        return {
            "credential": self.credential,
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "status": self.status,
            "coverage": self.coverage,
            "standard": self.standard,
            "standards_met": list(self.standards_met),
            "label": self.label,
            "system": self.system,
            "path": self.path,
            "version": self.version,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "renew_by": _iso(self.renew_by(remind_days)),
            "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, kw_only=True)
class Registry:
    """The registry: entries ordered by expiry (uncertified credentials last)."""

    entries: tuple[RegistryEntry, ...]
    generated_at: datetime
    issuer: str | None = None
    remind_days: int = 30
    scopes: tuple[str, ...] = field(default=())
    #: Whose rotation period the calendar follows (:data:`ACCOUNT_TYPES`).
    accounts: str = "service"
    #: The written policy's standards (preset ids): the calendar rotates at the shortest of
    #: their periods, as the policy adopts it; empty: each certificate's own standard.
    policy: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return {
            "generated_at": _iso(self.generated_at),
            "issuer": self.issuer,
            "remind_days": self.remind_days,
            "scopes": list(self.scopes),
            "counts": counts,
            "entries": [e.to_dict(self.remind_days) for e in self.entries],
        }

    def to_csv(self) -> str:
        """One row per credential/certificate, :data:`REGISTRY_CSV_FIELDS`."""
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=list(REGISTRY_CSV_FIELDS), lineterminator="\n", quoting=csv.QUOTE_ALL
        )
        writer.writeheader()
        for entry in self.entries:
            row = entry.to_dict(self.remind_days)
            row["standards_met"] = " ".join(entry.standards_met)
            # Labels, targets and reasons are the tenant's: never a formula, never a new row.
            writer.writerow({k: csv_cell(row[k]) for k in REGISTRY_CSV_FIELDS})
        return buf.getvalue()

    def to_ics(self) -> bytes:
        """An RFC 5545 calendar: one VEVENT per unrevoked certificate, at its expiry,
        with a VALARM ``remind_days`` before.

        Raises:
            PassgeniError: the ``icalendar`` library is not installed.
        """
        try:
            from icalendar import Alarm, Calendar, Event
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise PassgeniError(
                "calendar export needs icalendar: pip install 'passgeni[auditor]'"
            ) from None
        cal = Calendar()
        cal.add("prodid", PRODID)
        cal.add("version", "2.0")
        cal.add("calscale", "GREGORIAN")
        cal.add("method", "PUBLISH")
        cal.add("x-wr-calname", "PassGeni certificate renewals")
        for entry in self.entries:
            if entry.cert_id is None or entry.expires_at is None or entry.status == "revoked":
                continue
            what = printable(entry.label or entry.credential or entry.cert_id)
            rotate_at = entry.rotate_by(self.accounts, self.policy)
            if rotate_at is not None:
                cal.add_component(self._rotation_event(entry, what, rotate_at, Event, Alarm))
            cal.add_component(self._expiry_event(entry, what, Event, Alarm))
        return bytes(cal.to_ical())

    def _event(self, entry: RegistryEntry, uid: str, at: datetime, summary: str, Event: Any) -> Any:
        event = Event()
        event.add("uid", uid)
        event.add("dtstamp", self.generated_at.astimezone(UTC))
        event.add("dtstart", at.astimezone(UTC))
        event.add("dtend", at.astimezone(UTC) + timedelta(minutes=30))
        event.add("summary", summary)
        if entry.cert_url:
            event.add("url", entry.cert_url)
        event.add("categories", ["PassGeni", entry.standard or "certificate"])
        event.add("transp", "TRANSPARENT")
        return event

    def _alarm(self, text: str, Alarm: Any) -> Any:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", text)
        alarm.add("trigger", timedelta(days=-self.remind_days))
        return alarm

    def _rotation_event(
        self, entry: RegistryEntry, what: str, at: datetime, Event: Any, Alarm: Any
    ) -> Any:
        days = entry.rotation_days(self.accounts, self.policy)
        basis = (
            f"the written policy for {', '.join(get_preset(p).standard for p in self.policy)}"
            if self.policy
            else f"the written policy for {entry.standard}"
        )
        overdue = at <= self.generated_at
        event = self._event(
            entry,
            f"{entry.cert_id}-rotation@passgeni",
            at,
            f"{'Password rotation overdue' if overdue else 'Rotate password'}: {what}",
            Event,
        )
        lines = [
            f"Under {basis}, {self.accounts} credentials rotate every {days} days: "
            f"certificate {entry.cert_id} was issued "
            f"{_iso(entry.issued_at)}, so the credential is due for rotation {_iso(at)}.",
            f"Credential: {printable(entry.credential or 'not found in the scanned stores')}",
            "Rotate it (passgeni provision --store URI --rotate ...): a new password and "
            "certificate; this one is revoked.",
        ]
        if entry.cert_url:
            lines.append(f"Certificate: {entry.cert_url}")
        event.add("description", "\n".join(lines))
        event.add_component(self._alarm(f"Rotate the password of {what}", Alarm))
        return event

    def _expiry_event(self, entry: RegistryEntry, what: str, Event: Any, Alarm: Any) -> Any:
        assert entry.expires_at is not None
        event = self._event(
            entry,
            f"{entry.cert_id}@passgeni",
            entry.expires_at,
            f"Password certificate expires: {what}",
            Event,
        )
        lines = [
            f"Certificate {entry.cert_id} ({entry.standard or 'unknown standard'}) "
            f"expires {_iso(entry.expires_at)}.",
            f"Credential: {printable(entry.credential or 'not found in the scanned stores')}",
            f"Renew by {_iso(entry.renew_by(self.remind_days))}: rotate the credential "
            "(passgeni provision --store URI --rotate ...), which issues a new "
            "certificate and revokes this one.",
        ]
        if entry.cert_url:
            lines.append(f"Certificate: {entry.cert_url}")
        event.add("description", "\n".join(lines))
        event.add_component(self._alarm(f"Renew the password certificate for {what}", Alarm))
        return event


def _target_uri(system: str | None, path: str | None) -> str | None:
    if not system or not path:
        return None
    return f"{system}://{path}"


def _from_record(record: CertificateRecord) -> RegistryEntry:
    target = record.target
    return RegistryEntry(
        credential=_target_uri(target.system, target.path) if target else None,
        cert_id=record.cert_id,
        cert_url=record.cert_url,
        status=record.status,
        standard=record.compliance_standard,
        standards_met=record.standards_met,
        label=record.label,
        system=target.system if target else None,
        path=target.path if target else None,
        version=target.version if target else None,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        revocation_reason=record.revocation_reason,
    )


def build_registry(
    records: Iterable[CertificateRecord],
    coverage: CoverageReport | None = None,
    *,
    remind_days: int = 30,
    issuer: str | None = None,
    scopes: Iterable[str] = (),
    now: datetime | None = None,
    accounts: str = "service",
    policy: Iterable[str] = (),
) -> Registry:
    """Merge the audit's certificates with a coverage scan (see the module docstring).

    A scanned credential is attached to the certificate its store names; a
    credential with no (known) certificate becomes an ``uncertified`` row.

    ``accounts`` (``service`` or ``privileged``) picks the written policy's rotation
    period the calendar follows; ``policy`` names the policy's standards (preset ids, the
    shortest period applies), else each certificate's own standard's period does.

    Raises:
        InvalidRequest: ``remind_days`` is negative or above 3650, or ``accounts`` unknown.
        UnknownPreset: a ``policy`` standard is unknown.
    """
    if isinstance(remind_days, bool) or not 0 <= remind_days <= 3650:
        raise InvalidRequest("remind_days must be between 0 and 3650")
    if accounts not in ACCOUNT_TYPES:
        raise InvalidRequest(f"accounts must be one of {', '.join(ACCOUNT_TYPES)}")
    policy_ids = tuple(dict.fromkeys(get_preset(p).id for p in policy))
    at = now or datetime.now(UTC)
    by_id: dict[str, RegistryEntry] = {}
    for record in records:
        by_id.setdefault(record.cert_id, _from_record(record))
    extra: list[RegistryEntry] = []
    for found in coverage.entries if coverage is not None else ():
        if found.cert_id and found.cert_id in by_id:
            by_id[found.cert_id] = replace(
                by_id[found.cert_id],
                credential=found.uri,
                coverage=found.status,
                detail=found.detail,
            )
            continue
        extra.append(
            RegistryEntry(
                credential=found.uri,
                cert_id=found.cert_id,
                cert_url=found.cert_url,
                status="uncertified" if found.cert_id is None else "unknown",
                coverage=found.status,
                standard=found.standard,
                standards_met=found.standards_met,
                version=found.store_version,
                issued_at=found.issued_at,
                expires_at=found.expires_at,
                revocation_reason=found.revocation_reason,
                detail=found.detail
                or ("certificate not in this account's audit" if found.cert_id else ""),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    ordered = sorted(by_id.values(), key=lambda e: (e.expires_at or far, e.cert_id or "")) + sorted(
        extra, key=lambda e: (e.expires_at or far, e.credential or "")
    )
    return Registry(
        entries=tuple(ordered),
        generated_at=at,
        issuer=issuer,
        remind_days=remind_days,
        scopes=tuple(scopes),
        accounts=accounts,
        policy=policy_ids,
    )
