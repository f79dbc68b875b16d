"""Mounts as Vault reports them, and scans that never go green by mistake (issue #18, 3 and 5).

A KV mount may be a nested path (``team/payments``): the store asks Vault
(``sys/internal/ui/mounts/PATH``) instead of assuming the first segment. A scan of a
mount that does not exist, a mistyped prefix or a KV v1 mount is an error naming the
path (exit 4), an unreachable store exit 3, never "0 credentials -- ok".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passgeni_core import (
    StoreError,
    StoreNotFound,
    open_store,
    parse_store_uri,
    provision_into_store,
    scan,
)
from passgeni_core.cli import main
from tests.support import OpenBaoServer
from tests.support.authority import Authority
from tests.support.proofs import vault_proof

pytestmark = pytest.mark.usefixtures("vault_env", "passgeni_env")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_nested_mount_is_found_from_the_server(
    openbao: OpenBaoServer, authority: Authority, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = openbao.hvac_client()
    mount = f"team{uid}/payments"
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    uri = f"vault://{mount}/app/db#password"
    result = provision_into_store(authority.client(), open_store(uri), uri, "soc2")
    assert result.outcome == "created" and result.version == "1"
    # In Vault: the secret app/db of the mount team.../payments, not payments/app/db of "team...".
    stored = root.secrets.kv.v2.read_secret_version(
        path="app/db", mount_point=mount, raise_on_deleted_version=True
    )["data"]
    assert stored["data"] == {"password": stored["data"]["password"]}
    assert vault_proof(root, "app/db", mount=mount)["cert_id"] == result.cert_id
    meta = root.secrets.kv.v2.read_secret_metadata(path="app/db", mount_point=mount)["data"]
    assert meta["custom_metadata"]["passgeni-cert-id"] == result.cert_id
    # Scanned from the mount, from a folder inside it, and re-provisioned: unchanged.
    for prefix in (f"vault://{mount}", f"vault://{mount}/app"):
        code, out, _ = run(capsys, "scan", prefix, "--json")
        report = json.loads(out)
        assert code == 0, out
        assert [(c["uri"], c["status"]) for c in report["credentials"]] == [(uri, "valid")]
    again = provision_into_store(authority.client(), open_store(uri), uri, "soc2")
    assert again.outcome == "unchanged"
    # The mount itself is not a secret.
    with pytest.raises(StoreError, match="is the mount"):
        open_store(uri).prepare(parse_store_uri(f"vault://{mount}#password"))


def test_scan_errors_name_the_path_and_never_pass(
    openbao: OpenBaoServer, authority: Authority, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = openbao.hvac_client()
    root.sys.enable_secrets_engine("kv", path=f"kv1{uid}", options={"version": "1"})
    root.sys.enable_secrets_engine("kv", path=f"empty{uid}", options={"version": "2"})
    uri = f"vault://secret/{uid}/app/db"
    provision_into_store(authority.client(), open_store(uri), uri, "soc2")
    cases = {
        f"vault://nomount{uid}": "no secrets engine is mounted",
        f"vault://secret/{uid}/ap": "no secret and no folder at this path",  # a typo'd prefix
        f"vault://secret/{uid}/app/db#pasword": "",  # a key that is not there: judged, falls short
        f"vault://secret/{uid}/app/nothing#password": "no such secret",
        f"vault://kv1{uid}/app": "is not a KV version 2 mount",
    }
    for prefix, why in cases.items():
        code, out, err = run(capsys, "scan", prefix)
        if not why:
            assert code == 1 and "FALLS SHORT" in out, out
            continue
        assert code == 4, (prefix, out, err)
        assert "INCOMPLETE: 1 URI(s) could not be scanned" in out and "-- ok" not in out
        row = next(line for line in out.splitlines() if line.startswith(prefix))
        assert why in row, row
        code, out, _ = run(capsys, "scan", prefix, "--json")
        report = json.loads(out)
        assert code == 4 and report["ok"] is False and report["complete"] is False
        assert report["unlisted"] == [str(parse_store_uri(prefix, allow_prefix=True))]
        assert "store_not_found" in out or "store_error" in out
    # The good prefix beside a bad one: its credential is judged, the scan still fails.
    code, out, _ = run(capsys, "scan", f"vault://secret/{uid}", f"vault://nomount{uid}", "--json")
    report = json.loads(out)
    assert code == 4 and report["counts"]["valid"] == 1
    # An existing, empty KV v2 mount holds no credential: that is true, and ok.
    code, out, _ = run(capsys, "scan", f"vault://empty{uid}")
    assert code == 0 and "0 credential(s): none -- ok" in out
    # The library says the same.
    report = scan(authority.client(), [f"vault://secret/{uid}/ap"])
    assert not report.ok and not report.complete
    assert isinstance(report.unlisted[0].error, StoreNotFound)


def test_an_unreachable_store_is_exit_3_not_a_compliance_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("VAULT_CLIENT_TIMEOUT", "1")
    code, out, _ = run(capsys, "scan", "vault://secret/x")
    assert code == 3 and "cannot reach Vault at http://127.0.0.1:9" in out
    assert "INCOMPLETE" in out
