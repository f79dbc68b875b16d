"""``passgeni scan``: one credential in each status, on real OpenBao and moto, checked by the
real authority; reported as a table, JSON and CSV with the right exit code."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from passgeni_core import (
    CertificateRefs,
    Credential,
    GenerationParameters,
    open_store,
    parse_store_uri,
    provision_into_store,
    scan,
)
from passgeni_core.cli import main
from passgeni_core.crypto import decode_nonce, seed_commitment
from passgeni_core.model import derive_password, new_seed
from passgeni_core.stores import write_proof
from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403 - fixtures
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.support import MotoServer, OpenBaoServer

pytestmark = pytest.mark.usefixtures("vault_env", "aws_env", "passgeni_env")


def store_aged_certificate(authority: Authority, uri: str, days_ago: int) -> str:
    """A credential certified ``days_ago`` days ago (the authority's clock moved back).

    Written through the backend's own protocol steps, in the same order as
    ``provision_into_store`` (which refuses to accept an already-expired token).
    """
    target = parse_store_uri(uri)
    store = open_store(target)
    client = authority.time_traveller()
    plan = store.prepare(target)
    params, seed = GenerationParameters.for_preset("soc2"), new_seed()
    with authority.clock.shifted(days=-days_ago):
        session = client.start_generation("soc2", params, seed_commitment=seed_commitment(seed))
        assert session.authority_nonce is not None
        password = derive_password(params, seed, decode_nonce(session.authority_nonce))
        issued = client.issue_certificate(
            session, target=target.target(store.system, plan.next_version)
        )
    credential = Credential.generated(password, seed)
    refs = CertificateRefs(
        cert_id=issued.cert_id,
        cert_url=issued.cert_url,
        standard="soc2",
        expires_at=issued.expires_at,
        version=plan.next_version,
    )
    store.check(plan, refs)
    write_proof(store, plan, credential, refs)  # the proof record first
    refs = CertificateRefs(**{**refs.__dict__, "version": store.write(plan, credential, refs)})
    store.write_metadata(target, refs)
    return issued.cert_id


@pytest.fixture
def estate(
    openbao: OpenBaoServer, moto_server: MotoServer, authority: Authority, uid: str
) -> dict[str, Any]:
    """One credential in each status, under vault://secret/UID and aws-sm://UID/."""
    client = authority.client()
    vault = open_store("vault://secret")
    aws = open_store("aws-sm://")
    hv = openbao.hvac_client()
    v = f"vault://secret/{uid}"
    expected = {
        f"{v}/valid#password": "valid",
        f"{v}/expiring#password": "expiring",
        f"{v}/expired#password": "expired",
        f"{v}/revoked#password": "revoked",
        f"{v}/drifted#password": "drifted",
        f"{v}/plain#password": "no_certificate",
        f"{v}/weak#password": "below_requirement",
        f"aws-sm://{uid}/api#token": "valid",
        f"aws-sm://{uid}/changed#password": "drifted",
    }
    passwords = []
    for name in ("valid", "revoked", "drifted"):
        r = provision_into_store(client, vault, f"{v}/{name}", "soc2")
        assert r.credential is not None
        passwords.append(r.credential.password)
    store_aged_certificate(authority, f"{v}/expiring", days_ago=350)
    store_aged_certificate(authority, f"{v}/expired", days_ago=400)
    revoked = vault.read(parse_store_uri(f"{v}/revoked"))
    assert revoked.refs is not None
    client.revoke(revoked.refs.cert_id, "key compromise")
    hv.secrets.kv.v2.patch(
        path=f"{uid}/drifted", mount_point="secret", secret={"password": "changed-by-hand"}
    )
    hv.secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/plain", mount_point="secret", secret={"password": "never-certified"}
    )
    provision_into_store(client, vault, f"{v}/weak", "nist-800-63b")
    provision_into_store(client, aws, f"aws-sm://{uid}/api#token", "soc2")
    r = provision_into_store(client, aws, f"aws-sm://{uid}/changed", "soc2")
    assert r.credential is not None
    passwords.append(r.credential.password)
    # A new version made outside PassGeni, same value: the certified version is no longer current.
    sm = moto_server.boto3_client()
    value = sm.get_secret_value(SecretId=f"{uid}/changed", VersionStage="AWSCURRENT")
    sm.put_secret_value(SecretId=f"{uid}/changed", SecretString=value["SecretString"])
    return {
        "uris": [v, f"aws-sm://{uid}/"],
        "expected": expected,
        "secrets": [*passwords, "changed-by-hand", "never-certified"],
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_reports_every_status_as_json(
    estate: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "scan", *estate["uris"], "--require", "soc2", "--format", "json")
    assert code == 1
    report = json.loads(out)
    got = {c["uri"]: c["status"] for c in report["credentials"]}
    assert got == estate["expected"]
    assert report["ok"] is False and report["require"] == "soc2"
    assert report["counts"]["drifted"] == 2 and report["counts"]["valid"] == 2
    by_uri = {c["uri"]: c for c in report["credentials"]}
    uid_prefix = estate["uris"][0]
    revoked = by_uri[f"{uid_prefix}/revoked#password"]
    assert revoked["revocation_reason"] == "key compromise"
    drifted = by_uri[f"{uid_prefix}/drifted#password"]
    assert drifted["store_version"] == "2" and drifted["certified_version"] == "1"
    assert "version" in drifted["detail"]
    assert by_uri[f"{uid_prefix}/weak#password"]["standard"] == "NIST-800-63B"
    expiring = by_uri[f"{uid_prefix}/expiring#password"]
    days_left = (datetime.fromisoformat(expiring["expires_at"]) - datetime.now(UTC)).days
    assert 10 <= days_left <= 16
    for secret in estate["secrets"]:
        assert secret not in out


def test_scan_table_and_csv(estate: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", *estate["uris"], "--require", "soc2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["URI", "STATUS", "CERT"]
    for uri, status in estate["expected"].items():
        row = next(line for line in lines if line.startswith(uri + " "))
        assert row.split()[1] == status
    assert "FALLS SHORT of soc2" in out

    code, out, _ = run(capsys, "scan", *estate["uris"], "--require", "soc2", "--format", "csv")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["uri"]: r["status"] for r in rows} == estate["expected"]
    assert all(r["cert_url"].startswith("http") for r in rows if r["status"] != "no_certificate")
    for secret in estate["secrets"]:
        assert secret not in out


def test_scan_exit_codes(estate: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    vault_prefix = estate["uris"][0]
    # Valid and expiring fall short of nothing.
    code, out, _ = run(
        capsys, "scan", f"{vault_prefix}/valid", f"{vault_prefix}/expiring", "--json"
    )
    statuses = [c["status"] for c in json.loads(out)["credentials"]]
    assert code == 0 and statuses == ["valid", "expiring"]
    # --expiring-days 0: not "expiring" any more.
    code, out, _ = run(capsys, "scan", f"{vault_prefix}/expiring", "--expiring-days", "0", "--json")
    assert code == 0 and json.loads(out)["credentials"][0]["status"] == "valid"
    # Without --require a weaker standard is fine; with it, it falls short.
    assert run(capsys, "scan", f"{vault_prefix}/weak")[0] == 0
    assert run(capsys, "scan", f"{vault_prefix}/weak", "--require", "soc2")[0] == 1
    # Bad input: exit 2, one line.
    code, _, err = run(capsys, "scan", "vault:/nope")
    assert code == 2 and "[invalid_store_uri]" in err and err.count("\n") == 1
    code, _, err = run(capsys, "scan", vault_prefix, "--require", "nope")
    assert code == 2 and "[unknown_preset]" in err


def test_scan_library_time_travel_and_lagging_metadata(
    estate: dict[str, Any], authority: Authority, openbao: OpenBaoServer
) -> None:
    client = authority.client()
    vault_prefix = estate["uris"][0]
    later = scan(client, [f"{vault_prefix}/valid"], now=datetime.now(UTC) + timedelta(days=366))
    assert [e.status for e in later.entries] == ["expired"]
    # Metadata naming another certificate than the value: a provisioning stopped half-way.
    path = vault_prefix.split("secret/", 1)[1] + "/valid"
    openbao.hvac_client().adapter.request(
        "PATCH",
        f"/v1/secret/metadata/{path}",
        json={"custom_metadata": {"passgeni-cert-id": "pg_other"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    entry = scan(client, [f"{vault_prefix}/valid"]).entries[0]
    assert entry.status == "drifted" and "re-run" in entry.detail
    # Re-running the provisioning repairs it.
    result = provision_into_store(
        client, open_store("vault://secret"), f"{vault_prefix}/valid", "soc2"
    )
    assert result.outcome == "repaired"
    assert scan(client, [f"{vault_prefix}/valid"]).entries[0].status == "valid"


def test_unreachable_store_is_an_error_entry(
    authority: Authority, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("VAULT_CLIENT_TIMEOUT", "1")
    code, out, _ = run(capsys, "scan", "vault://secret/x", "--json")
    report = json.loads(out)
    assert code == 3 and report["credentials"][0]["status"] == "error"
    assert "cannot reach Vault" in report["credentials"][0]["detail"]


def test_scan_submit_sends_the_dashboard_references_and_statuses_only(
    estate: dict[str, Any], authority: Authority, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import select

    from passgeni_authority._db import scan_findings, scan_reports

    code, out, err = run(capsys, "scan", *estate["uris"], "--require", "soc2", "--json", "--submit")
    assert code == 1
    found = json.loads(out)["credentials"]
    assert err.startswith("submitted scan ") and "9 credential(s), 6 falling short" in err
    scan_id = int(err.split()[2])
    with authority.embedded.service.storage.engine.connect() as conn:
        report = conn.execute(select(scan_reports).where(scan_reports.c.id == scan_id)).one()
        rows = conn.execute(select(scan_findings).where(scan_findings.c.report_id == scan_id)).all()
    assert (report.credentials, report.failing, report.require) == (9, 6, "soc2")
    assert {r.uri: r.status for r in rows} == estate["expected"]
    assert {r.uri: r.cert_id for r in rows} == {c["uri"]: c["cert_id"] for c in found}
    drifted = next(r for r in rows if r.uri.endswith("/drifted#password"))
    from passgeni_core.workflows import REASONS

    assert drifted.reasons and set(drifted.reasons.split()) <= set(REASONS)
    # Only references and statuses were stored: no value, no seed, no free text.
    stored = repr([tuple(r) for r in rows]) + repr(tuple(report))
    for secret in estate["secrets"]:
        assert secret not in stored
