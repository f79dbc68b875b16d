"""``passgeni prove URI`` against real OpenBao and a served authority: it proves what
``provision --store`` wrote, and refuses a value changed by hand beside its seed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from passgeni_core import AuthorityClient
from passgeni_core.cli import main
from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403 - fixtures
from tests.support import OpenBaoServer
from tests.support.proofs import vault_proof


@pytest.mark.usefixtures("passgeni_env", "vault_env")
def test_prove_a_provisioned_credential_and_refuse_a_hand_changed_one(
    openbao: OpenBaoServer, uid: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = f"vault://secret/{uid}/prove#db"
    assert main(["provision", "--preset", "soc2", "--store", uri, "--json"]) == 0
    capsys.readouterr()

    assert main(["prove", uri]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"PROVEN: {uri}: ") and "passgeni-shake256-v1" in out

    # Pinned keys: the authority's own JWKS, saved, is all it needs to trust.
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(AuthorityClient(os.environ["PASSGENI_URL"]).jwks_document()))
    assert main(["prove", uri, "--jwks", str(jwks)]) == 0
    capsys.readouterr()
    client = openbao.hvac_client()
    data = client.secrets.kv.v2.read_secret_version(
        path=f"{uid}/prove", mount_point="secret", raise_on_deleted_version=False
    )["data"]["data"]
    assert set(data) == {"db"}  # the value workloads read; the seed is in the proof record
    seed = vault_proof(client, f"{uid}/prove", "db")["seed"]
    assert main(["prove", uri, "--json"]) == 0
    proved = json.loads(capsys.readouterr().out)
    assert proved["proven"] is True and proved["proof"] == "generation"
    assert data["db"] not in json.dumps(proved) and seed not in json.dumps(proved)
    jwks.write_text('{"keys": []}')
    assert main(["prove", uri, "--jwks", str(jwks)]) == 1  # an empty key set trusts nothing
    assert "NOT PROVEN (unknown_key)" in capsys.readouterr().out

    # Someone edits the password by hand and keeps the seed and references.
    client.secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/prove", secret={**data, "db": "Password123!Password"}, mount_point="secret"
    )
    assert main(["prove", uri, "--json"]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert refused["proven"] is False and "provenance_mismatch" in refused["reasons"]

    assert main(["prove", f"vault://secret/{uid}/nothing#db"]) == 1
    assert "NOT PROVEN (no_value)" in capsys.readouterr().out


@pytest.mark.usefixtures("passgeni_env", "vault_env")
def test_prove_and_scan_an_inline_credential_then_rotation_migrates_it(
    openbao: OpenBaoServer, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A credential stored with its seed inside the value (before proof records, or with
    ``proof_location=inline``) proves and scans as before; a rotation moves the seed out."""
    uri = f"vault://secret/{uid}/legacy#db"
    inline = ["--store-option", "proof_location=inline"]
    assert main(["provision", "--preset", "soc2", "--store", uri, *inline, "--json"]) == 0
    capsys.readouterr()
    client = openbao.hvac_client()

    def value() -> dict[str, str]:
        got: dict[str, str] = client.secrets.kv.v2.read_secret_version(
            path=f"{uid}/legacy", mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]
        return got

    assert "db.passgeni-seed" in value() and "db.passgeni-cert-id" in value()
    assert main(["prove", uri]) == 0
    assert capsys.readouterr().out.startswith(f"PROVEN: {uri}: ")
    assert main(["scan", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["provision", "--preset", "soc2", "--store", uri, "--rotate", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert set(value()) == {"db"}  # migrated: the in-payload fields are gone
    assert vault_proof(client, f"{uid}/legacy", "db")["cert_id"] == rotated["cert_id"]
    assert main(["prove", uri]) == 0
    capsys.readouterr()
    assert main(["scan", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
