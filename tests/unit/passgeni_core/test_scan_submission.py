"""``scan --submit``: what a coverage report sends the dashboard (``CoverageReport.submissions``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from passgeni_core.audit import CoverageReport
from passgeni_core.workflows import Verdict

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _report(n: int) -> CoverageReport:
    entries = tuple(
        Verdict(
            uri=f"vault://secret/app/{i:05d}#password",
            status="drifted" if i % 3 == 0 else "valid",
            detail="the stored value changed: hunter2 is not it",  # never sent
            reasons=("value_changed",) if i % 3 == 0 else (),
            cert_id=f"pg_{i:026d}",
            standard="SOC2",
            expires_at=AT,
            revocation_reason="tenant text",  # never sent
        )
        for i in range(n)
    )
    return CoverageReport(entries=entries, scanned_at=AT, require="soc2")


def test_only_references_and_statuses_are_sent() -> None:
    (body,) = _report(3).submissions()
    sent = msgspec.json.decode(msgspec.json.encode(body))
    assert sent == {
        "credentials": [
            {
                "uri": "vault://secret/app/00000#password",
                "status": "drifted",
                "reasons": ["value_changed"],
                "cert_id": "pg_" + "0" * 26,
                "standard": "SOC2",
                "expires_at": "2026-12-04T12:00:00Z",
            },
            {
                "uri": "vault://secret/app/00001#password",
                "status": "valid",
                "cert_id": "pg_" + "0" * 25 + "1",
                "standard": "SOC2",
                "expires_at": "2026-12-04T12:00:00Z",
            },
            {
                "uri": "vault://secret/app/00002#password",
                "status": "valid",
                "cert_id": "pg_" + "0" * 25 + "2",
                "standard": "SOC2",
                "expires_at": "2026-12-04T12:00:00Z",
            },
        ],
        "scanned_at": "2026-12-04T12:00:00Z",
        "require": "soc2",
    }
    assert "hunter2" not in repr(sent) and "tenant text" not in repr(sent)


def test_a_large_scan_is_split_under_the_body_limit_in_order() -> None:
    bodies = _report(2000).submissions(max_bytes=60_000)
    assert len(bodies) > 1
    assert all(len(msgspec.json.encode(b)) < 60_000 for b in bodies)
    uris = [f.uri for b in bodies for f in b.credentials]
    assert uris == [f"vault://secret/app/{i:05d}#password" for i in range(2000)]


def test_an_empty_scan_is_one_empty_submission() -> None:
    (body,) = CoverageReport(entries=(), scanned_at=AT).submissions()
    assert body.credentials == []
