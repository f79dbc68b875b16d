"""OSCAL Assessment Results from ``passgeni scan --format oscal`` and ``passgeni registry
--format oscal`` over a real OpenBao store and a served authority, validated by
``trestle validate`` (compliance-trestle) in a fresh trestle workspace."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passgeni_core.audit import CONTROLS
from tests.support.authority import Live, live_authority
from tests.support.oscal import findings as _findings, validate as _validate
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("oscal-authority")) as authority:
        yield authority


@pytest.fixture
def estate(
    live: Live, openbao: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """In Vault: a certified SOC 2 db password (rotated once), a certified HIPAA replica
    password, a certified SOC 2 cache password then changed by hand, an uncertified one."""
    import hvac

    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    prefix = f"oscal-{secrets.token_hex(4)}"
    uri = {name: f"vault://secret/{prefix}/{name}#password" for name in ("db", "replica", "cache")}
    ids: dict[str, str] = {}
    for name, preset, extra in (
        ("db", "soc2", []),
        ("db", "soc2", ["--rotate"]),
        ("replica", "hipaa", []),
        ("cache", "soc2", []),
    ):
        code, out, err = run(
            capsys, "provision", "--preset", preset, "--store", uri[name], "--json", *extra,
            *live.flags(),
        )  # fmt: skip
        assert code == 0, err
        ids[name] = json.loads(out)["cert_id"]
    vault = hvac.Client(url=openbao.url, token=openbao.token).secrets.kv.v2
    current = vault.read_secret_version(
        path=f"{prefix}/cache", mount_point="secret", raise_on_deleted_version=True
    )["data"]
    vault.create_or_update_secret(
        path=f"{prefix}/cache",
        secret={**current["data"], "password": "changed-by-hand-1"},
        mount_point="secret",
    )
    vault.create_or_update_secret(
        path=f"{prefix}/manual", secret={"password": "typed-by-hand"}, mount_point="secret"
    )
    return {
        "prefix": prefix,
        "uri": uri,
        "ids": ids,
        "manual": f"vault://secret/{prefix}/manual#password",
    }


def test_scan_as_oscal_observes_each_credential_and_judges_each_control(
    estate: dict[str, Any], live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scope = f"vault://secret/{estate['prefix']}"
    code, out, err = run(capsys, "scan", scope, "--format", "oscal", *live.flags())
    assert code == 1, err  # a drifted and an uncertified credential: the scan falls short
    assert "typed-by-hand" not in out and "changed-by-hand" not in out
    path = tmp_path / "scan.json"
    path.write_text(out)
    document = json.loads(out)
    (result,) = document["assessment-results"]["results"]

    # One observation per credential, each on its inventory item, the certificate as evidence.
    observations = {o["subjects"][0]["title"]: o for o in result["observations"]}
    uri = estate["uri"]
    assert set(observations) == {uri["db"], uri["replica"], uri["cache"], estate["manual"]}
    items = {i["uuid"] for i in result["local-definitions"]["inventory-items"]}
    assert {o["subjects"][0]["subject-uuid"] for o in observations.values()} == items
    db = observations[uri["db"]]
    assert db["methods"] == ["TEST"]
    assert db["relevant-evidence"][0]["href"].endswith(f"/cert/{estate['ids']['db']}")
    assert {p["name"]: p["value"] for p in db["props"]}["status"] == "valid"
    assert {p["name"]: p["value"] for p in observations[uri["cache"]]["props"]}[
        "status"
    ] == "drifted"

    # A finding per control (the standards certified for): SOC 2 CC6.1 and HIPAA.
    findings = _findings(document)
    soc2, hipaa = CONTROLS["soc2"][0], CONTROLS["hipaa"][0]
    assert set(findings) == {soc2, hipaa}
    selected = result["reviewed-controls"]["control-selections"][0]["include-controls"]
    assert {c["control-id"] for c in selected} == {soc2, hipaa}
    status = findings[soc2]["target"]["status"]
    assert status["state"] == "not-satisfied" and status["reason"] == "fail"
    assert f"{uri['cache']} (drifted" in status["remarks"]
    assert f"{estate['manual']} (no_certificate" in status["remarks"]
    assert uri["db"] not in status["remarks"]  # it satisfies the control
    related = {r["observation-uuid"] for r in findings[soc2]["related-observations"]}
    assert observations[uri["db"]]["uuid"] in related
    assert observations[uri["replica"]]["uuid"] not in related  # certified for HIPAA, not SOC 2
    assert "CC6.1" in findings[soc2]["description"]

    done = _validate(path, tmp_path / "workspace")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VALID" in done.stdout

    # trestle does check: the same document with a duplicated uuid does not validate.
    result["observations"][1]["uuid"] = result["observations"][0]["uuid"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    assert _validate(broken, tmp_path / "workspace-broken").returncode != 0


def test_a_scope_of_good_credentials_satisfies_the_required_control(
    estate: dict[str, Any], live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = estate["uri"]["replica"]
    code, out, err = run(
        capsys, "scan", replica, "--require", "hipaa", "--format", "oscal", *live.flags()
    )
    assert code == 0, err
    (finding,) = _findings(json.loads(out)).values()
    assert finding["target"]["target-id"] == f"{CONTROLS['hipaa'][0]}_obj"
    assert finding["target"]["status"]["state"] == "satisfied"
    assert finding["target"]["status"]["reason"] == "pass"
    # Required FIPS 140-3 of a HIPAA certificate: not met, and said why.
    code, out, _ = run(
        capsys, "scan", replica, "--require", "fips-140-3", "--format", "oscal", *live.flags()
    )
    (finding,) = _findings(json.loads(out)).values()
    status = finding["target"]["status"]
    assert status["state"] == "not-satisfied"
    path = tmp_path / "replica.json"
    path.write_text(out)
    done = _validate(path, tmp_path / "workspace")
    assert done.returncode == 0, done.stdout + done.stderr


def test_registry_as_oscal_validates_and_keeps_revoked_history_out_of_scope(
    estate: dict[str, Any], live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "registry.oscal.json"
    code, _, err = run(capsys, "registry", "--out", str(out_file), *live.flags())
    assert code == 0 and "wrote oscal registry" in err
    document = json.loads(out_file.read_text())
    (result,) = document["assessment-results"]["results"]
    by_cert = {
        {p["name"]: p["value"] for p in o["props"]}.get("certificate-id"): o
        for o in result["observations"]
    }
    ids = estate["ids"]
    assert {ids["db"], ids["replica"], ids["cache"]} <= set(by_cert)
    findings = _findings(document)
    soc2 = findings[CONTROLS["soc2"][0]]
    related = {r["observation-uuid"] for r in soc2["related-observations"]}
    assert by_cert[ids["db"]]["uuid"] in related
    # The rotated-away first db certificate is revoked history: observed, in no scope.
    revoked = [o for o in result["observations"] if o["title"].endswith(": revoked")]
    assert revoked and all(o["uuid"] not in related for o in revoked)
    assert "assessed against no control" in revoked[0]["description"]
    done = _validate(out_file, tmp_path / "workspace", name="registry")
    assert done.returncode == 0, done.stdout + done.stderr

    # With a scan of the store, the drifted credential fails its control.
    code, out, _ = run(
        capsys, "registry", "--scope", f"vault://secret/{estate['prefix']}", "--format", "oscal",
        *live.flags(),
    )  # fmt: skip
    assert code == 0
    remarks = _findings(json.loads(out))[CONTROLS["soc2"][0]]["target"]["status"]["remarks"]
    assert estate["uri"]["cache"] in remarks and "drifted" in remarks


def test_a_scope_of_uncertified_credentials_satisfies_no_control(
    estate: dict[str, Any], live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "scan", estate["manual"], "--format", "oscal", *live.flags())
    assert code == 1
    findings = _findings(json.loads(out))
    assert set(findings) == {control for control, _ in CONTROLS.values()}
    assert {f["target"]["status"]["state"] for f in findings.values()} == {"not-satisfied"}
    path = tmp_path / "manual.json"
    path.write_text(out)
    done = _validate(path, tmp_path / "workspace")
    assert done.returncode == 0, done.stdout + done.stderr
