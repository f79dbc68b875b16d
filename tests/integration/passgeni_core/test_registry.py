"""`passgeni registry`: the credential -> certificate map from the authority's audit
and a scan of a real OpenBao (Vault API) store; CSV, JSON and an RFC 5545 calendar
parsed back with icalendar."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.authority import Live, live_authority
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("authority")) as authority:
        yield authority


@pytest.fixture
def estate(
    live: Live, openbao: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """In Vault: a certified db password (rotated once: its first certificate is revoked),
    a certified replica password, and one secret nobody certified."""
    import hvac

    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    prefix = f"reg-{secrets.token_hex(4)}"
    db, replica = (
        f"vault://secret/{prefix}/db#password",
        f"vault://secret/{prefix}/replica#password",
    )
    ids: dict[str, Any] = {}
    for name, uri, preset, extra in (
        ("db-old", db, "soc2", []),
        ("db", db, "soc2", ["--rotate"]),
        ("replica", replica, "hipaa", ["--label", "replica password"]),
    ):
        code, out, err = run(
            capsys, "provision", "--preset", preset, "--store", uri, "--json", *extra, *live.flags()
        )
        assert code == 0, err
        ids[name] = json.loads(out)["cert_id"]
    hvac.Client(url=openbao.url, token=openbao.token).secrets.kv.v2.create_or_update_secret(
        path=f"{prefix}/manual", secret={"password": "typed-by-hand"}, mount_point="secret"
    )
    return {"prefix": prefix, "db": db, "replica": replica, "ids": ids}


def test_registry_csv_json_and_calendar(
    live: Live, estate: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from icalendar import Calendar

    scope = f"vault://secret/{estate['prefix']}"
    ids = estate["ids"]
    base = ["registry", "--scope", scope, *live.flags()]

    code, out, _ = run(capsys, *base)  # CSV on stdout by default
    assert code == 0
    rows = {(r["cert_id"] or r["credential"]): r for r in csv.DictReader(io.StringIO(out))}
    assert rows[ids["db"]]["credential"] == estate["db"]
    assert rows[ids["db"]]["coverage"] == "valid" and rows[ids["db"]]["status"] == "valid"
    assert rows[ids["db-old"]]["status"] == "revoked"
    assert rows[ids["db-old"]]["revocation_reason"] == "rotated"
    assert rows[ids["replica"]]["label"] == "replica password"
    manual = rows[f"vault://secret/{estate['prefix']}/manual#password"]
    assert manual["status"] == "uncertified" and manual["coverage"] == "no_certificate"
    assert "typed-by-hand" not in out

    out_json = tmp_path / "registry.json"
    code, _, err = run(capsys, *base, "--out", str(out_json))  # format from the suffix
    assert code == 0 and "wrote json registry" in err
    data = json.loads(out_json.read_text())
    assert data["issuer"] == live.url and data["scopes"] == [scope]
    assert data["counts"]["uncertified"] == 1 and data["counts"]["revoked"] >= 1

    ics = tmp_path / "renewals.ics"
    code, _, _ = run(capsys, *base, "--format", "ics", "--remind-days", "45", "--out", str(ics))
    assert code == 0
    calendar = Calendar.from_ical(ics.read_bytes())
    assert str(calendar["PRODID"]).startswith("-//PassGeni//")
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    # One event per unrevoked certificate, none for the revoked one.
    assert f"{ids['db']}@passgeni" in events and f"{ids['replica']}@passgeni" in events
    assert f"{ids['db-old']}@passgeni" not in events
    with live.client() as client:
        record = client.get_certificate(ids["replica"])
    event = events[f"{ids['replica']}@passgeni"]
    assert event.decoded("DTSTART") == record.expires_at
    assert event.decoded("DTEND") > event.decoded("DTSTART")
    assert "replica password" in str(event["SUMMARY"])
    assert str(event["URL"]) == record.cert_url
    alarms = event.walk("VALARM")
    assert len(alarms) == 1 and str(alarms[0]["ACTION"]) == "DISPLAY"
    assert alarms[0].decoded("TRIGGER") == timedelta(days=-45)


def test_registry_without_scope_lists_the_audit(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "provision", "--preset", "pci-dss", "--json", *live.flags())
    cert_id = json.loads(out)["cert_id"]
    code, out, _ = run(capsys, "registry", "--format", "json", *live.flags())
    assert code == 0
    entry = next(e for e in json.loads(out)["entries"] if e["cert_id"] == cert_id)
    assert entry["coverage"] == "" and entry["credential"] is None and entry["renew_by"]


def test_calendar_rotation_dates_follow_the_written_policy(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from icalendar import Calendar

    code, out, _ = run(capsys, "provision", "--preset", "pci-dss", "--json", *live.flags())
    cert_id = json.loads(out)["cert_id"]
    ics = tmp_path / "privileged.ics"
    code, _, err = run(
        capsys, "registry", "--accounts", "privileged", "--out", str(ics), *live.flags()
    )
    assert code == 0, err
    raw = ics.read_bytes()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    events = {str(e["UID"]): e for e in Calendar.from_ical(raw).walk("VEVENT")}
    with live.client() as client:
        record = client.get_certificate(cert_id)
    # PCI DSS v4.0 8.3.9 (the written policy): privileged passwords every 90 days.
    rotation = events[f"{cert_id}-rotation@passgeni"]
    assert rotation.decoded("DTSTART") == record.issued_at + timedelta(days=90)
    assert len(rotation.walk("VALARM")) == 1
    assert events[f"{cert_id}@passgeni"].decoded("DTSTART") == record.expires_at
