"""The renewal calendar (``registry --format ics``): a rotation event at each credential's
rotation date under the written policy, an expiry event, a VALARM on each; RFC 5545 line
folding, CRLF and text escaping, checked on the raw bytes and parsed back with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from passgeni_core import InvalidRequest
from passgeni_core.audit import ROTATION, Registry, RegistryEntry, build_registry

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _vevents(cal: Any) -> list[Any]:
    """The calendar's VEVENTs (icalendar ships no type information for ``walk``)."""
    events: list[Any] = cal.walk("VEVENT")
    return events


def _entry(
    cert: str,
    standard: str,
    issued_days_ago: int,
    *,
    status: str = "valid",
    label: str | None = None,
) -> RegistryEntry:
    issued = NOW - timedelta(days=issued_days_ago)
    return RegistryEntry(
        credential=f"vault://secret/app/{cert}#password",
        cert_id=cert,
        cert_url=f"https://passgeni.example/cert/{cert}",
        status=status,
        standard=standard,
        label=label,
        issued_at=issued,
        expires_at=issued + timedelta(days=365),
    )


def _calendar(
    accounts: str, *entries: RegistryEntry, remind: int = 14, policy: tuple[str, ...] = ()
) -> tuple[bytes, object]:
    from icalendar import Calendar

    registry = Registry(
        entries=entries, generated_at=NOW, remind_days=remind, accounts=accounts, policy=policy
    )
    raw = registry.to_ics()
    return raw, Calendar.from_ical(raw)


def test_rotation_dates_follow_the_written_policy_for_the_account_type() -> None:
    pci = _entry("pg_pci", "PCI-DSS", 10)
    fips = _entry("pg_fips", "FIPS-140-3", 10)
    nist = _entry("pg_nist", "NIST-800-63B", 10)
    soc2 = _entry("pg_soc2", "SOC2", 10)
    revoked = _entry("pg_gone", "PCI-DSS", 10, status="revoked")
    _, cal = _calendar("privileged", pci, fips, nist, soc2, revoked)
    events = {str(e["UID"]): e for e in _vevents(cal)}
    assert ROTATION["pci-dss"].privileged_days == 90 == ROTATION["fips-140-3"].privileged_days
    # PCI DSS and FIPS 140-3 privileged accounts: rotate 90 days after issuance.
    for cert in ("pg_pci", "pg_fips"):
        rotation = events[f"{cert}-rotation@passgeni"]
        issued = NOW - timedelta(days=10)
        assert rotation.decoded("DTSTART") == issued + timedelta(days=90)
        assert str(rotation["SUMMARY"]).startswith("Rotate password: vault://secret/app/")
        assert "every 90 days" in str(rotation["DESCRIPTION"])
        assert events[f"{cert}@passgeni"].decoded("DTSTART") == issued + timedelta(days=365)
    # NIST sets no period (change on compromise): only the expiry. SOC 2's yearly rotation
    # falls on the expiry itself: one event, not two. A revoked certificate: none.
    assert "pg_nist-rotation@passgeni" not in events and "pg_nist@passgeni" in events
    assert "pg_soc2-rotation@passgeni" not in events and "pg_soc2@passgeni" in events
    assert not any("pg_gone" in uid for uid in events)
    # Every event carries a display alarm remind_days ahead.
    for event in events.values():
        (alarm,) = event.walk("VALARM")
        assert str(alarm["ACTION"]) == "DISPLAY" and str(alarm["DESCRIPTION"])
        assert alarm.decoded("TRIGGER") == timedelta(days=-14)

    # Service accounts: PCI DSS 365 days (on the expiry: no separate event), FIPS 180 days.
    _, cal = _calendar("service", pci, fips)
    uids = {str(e["UID"]): e for e in _vevents(cal)}
    assert "pg_pci-rotation@passgeni" not in uids
    assert uids["pg_fips-rotation@passgeni"].decoded("DTSTART") == NOW + timedelta(days=170)


def test_a_written_policy_of_several_standards_rotates_at_the_shortest_period() -> None:
    """As the policy adopts it: SOC 2 with PCI DSS rotates privileged accounts every 90 days."""
    soc2 = _entry("pg_soc2", "SOC2", 10)
    registry = build_registry([], accounts="privileged", policy=["soc2", "PCI-DSS"], now=NOW)
    assert registry.policy == ("soc2", "pci-dss")
    _, cal = _calendar("privileged", soc2, policy=registry.policy)
    events = {str(e["UID"]): e for e in _vevents(cal)}
    rotation = events["pg_soc2-rotation@passgeni"]
    assert rotation.decoded("DTSTART") == NOW + timedelta(days=80)
    description = str(rotation["DESCRIPTION"])
    assert "Under the written policy for SOC 2 CC6.1, PCI-DSS v4.0 Req 8.3" in description
    assert "privileged credentials rotate every 90 days" in description
    # A policy of standards without a period: no rotation event, the expiry only.
    _, cal = _calendar("privileged", soc2, policy=("nist-800-63b",))
    assert [str(e["UID"]) for e in _vevents(cal)] == ["pg_soc2@passgeni"]


def test_an_overdue_rotation_says_so() -> None:
    _, cal = _calendar("privileged", _entry("pg_late", "PCI-DSS", 120))
    (late,) = [e for e in _vevents(cal) if str(e["UID"]).endswith("-rotation@passgeni")]
    assert late.decoded("DTSTART") == NOW - timedelta(days=30)
    assert str(late["SUMMARY"]).startswith("Password rotation overdue: ")


def test_the_calendar_is_rfc5545_folded_crlf_and_escaped() -> None:
    label = "Zürich payments, primary; ≥ 20 chars \\ über-long " + "x" * 80
    raw, cal = _calendar("privileged", _entry("pg_label", "PCI-DSS", 5, label=label))
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)  # CRLF only
    assert all(len(line) <= 75 for line in lines), max(lines, key=len)
    assert any(line.startswith(b" ") for line in lines)  # long lines were folded
    for line in lines:
        line.decode("utf-8")  # folding never splits a UTF-8 sequence
    unfolded = raw.replace(b"\r\n ", b"")
    summary = next(li for li in unfolded.split(b"\r\n") if li.startswith(b"SUMMARY:Rotate"))
    assert b"payments\\, primary\\; " in summary and b"\\\\ " in summary  # TEXT escaping
    events = _vevents(cal)
    assert {str(e["SUMMARY"]) for e in events} == {
        f"Rotate password: {label}",
        f"Password certificate expires: {label}",
    }
    for event in events:
        assert "\n" in str(event["DESCRIPTION"])  # multi-line text survives as \\n
        assert len(event.walk("VALARM")) == 1


def test_accounts_must_be_known() -> None:
    with pytest.raises(InvalidRequest, match="accounts must be one of"):
        build_registry([], accounts="admins")
