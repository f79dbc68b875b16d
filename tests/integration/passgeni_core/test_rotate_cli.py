"""``passgeni rotate --inventory``: bulk rotation on real servers with an injected failure.

OpenBao (Vault KV v2), moto (Secrets Manager), a PostgreSQL 15 cluster and the
real authority. One entry's PostgreSQL role does not exist yet (injected
failure): the run continues, rotates the others and exits non-zero; once the
role exists, the same command resumes (only that entry is rotated, no new
certificate for the others) and exits 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from passgeni_core.cli import main
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import MotoServer, OpenBaoServer, PostgresCluster
from tests.support.proofs import aws_proof
from vault_plugin_helper.targets import scram_sha256_verifier

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def env(
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in list(os.environ):
        if name.startswith(("PASSGENI_", "VAULT_", "AWS_", "PG")):
            monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text("")
    for name, value in {
        "HOME": str(tmp_path),
        "PASSGENI_CONFIG": str(config),
        "PASSGENI_URL": authority.url,
        "PASSGENI_API_KEY": authority.api_key,
        "PASSGENI_ISSUER": authority.embedded.issuer,
        "VAULT_ADDR": openbao.url,
        "VAULT_TOKEN": openbao.token,
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_REGION": moto_server.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


def rotate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["rotate", "--json", "--no-progress", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def vault_value(openbao: OpenBaoServer, path: str) -> dict[str, str]:
    read = openbao.hvac_client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )
    data: dict[str, str] = read["data"]["data"]
    return data


def role_has_password(pg: PostgresCluster, role: str, password: str) -> bool:
    """Whether the role's stored SCRAM verifier is that of ``password``."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    if row is None or row[0] is None:
        return False
    head, keys = row[0].split("$", 2)[1:]
    iterations, salt = head.split(":")
    import base64

    expected = scram_sha256_verifier(
        password, salt=base64.b64decode(salt), iterations=int(iterations)
    )
    return bool(expected == row[0]) and bool(keys)


def test_bulk_rotation_with_injected_failure_resumes(
    env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    openbao: OpenBaoServer,
    moto_server: MotoServer,
    postgres: PostgresCluster,
    authority: Authority,  # noqa: F811
    uid: str,  # noqa: F811
) -> None:
    role_ok, role_missing = f"svc_ok_{uid}", f"svc_late_{uid}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role_ok}" LOGIN')
    pg_options = {"conninfo": postgres.dsn(), "admin_user": "postgres"}
    inventory = {
        "epoch": "2026-q4",
        "defaults": {"preset": "soc2"},
        "credentials": [
            *[
                {"name": f"app-{i}", "destination": f"vault://secret/bulk/{uid}/app-{i}"}
                for i in range(4)
            ],
            {
                "name": "aws-api",
                "destination": f"aws-sm://bulk/{uid}/api#token",
                "preset": "pci-dss",
            },
            {
                "name": "db-ok",
                "destination": f"vault://secret/bulk/{uid}/db-ok",
                "postgres": {**pg_options, "role": role_ok},
            },
            {
                "name": "db-late",
                "destination": f"vault://secret/bulk/{uid}/db-late",
                "postgres": {**pg_options, "role": role_missing},
            },
        ],
    }
    path = tmp_path / "inventory.yaml"
    import yaml

    path.write_text(yaml.safe_dump(inventory))

    # Dry run: reads only.
    code, report = rotate(capsys, "--inventory", str(path), "--dry-run")
    assert code == 0
    assert report["summary"] == {"would-create": 7}
    with authority.client() as client:
        issued_before = client.audit(page_size=1).total

    # First run: the missing role fails; everything else is rotated; exit non-zero.
    code, report = rotate(capsys, "--inventory", str(path), "--concurrency", "4")
    assert code == 4
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["db-late"]["status"] == "failed"
    assert by_name["db-late"]["error"]["code"] == "target_error"
    assert all(by_name[n]["status"] == "created" for n in by_name if n != "db-late")
    assert report["summary"] == {"created": 6, "failed": 1}
    db_ok = vault_value(openbao, f"bulk/{uid}/db-ok")
    assert role_has_password(postgres, role_ok, db_ok["password"])
    assert not set(db_ok["password"]) & set("@/:?#%&\"'\\")  # the target's exclusions
    # The failed entry left nothing stored, and its certificate was revoked.
    import hvac.exceptions

    with pytest.raises(hvac.exceptions.InvalidPath):
        vault_value(openbao, f"bulk/{uid}/db-late")
    aws = json.loads(
        moto_server.boto3_client().get_secret_value(
            SecretId=f"bulk/{uid}/api", VersionStage="AWSCURRENT"
        )["SecretString"]
    )
    assert set(aws) == {"token"}  # the proof is in passgeni-proof/NAME
    proof = aws_proof(moto_server.boto3_client(), f"bulk/{uid}/api", "token")
    assert proof["cert_id"] == by_name["aws-api"]["cert_id"]
    out = json.dumps(report)
    assert db_ok["password"] not in out and aws["token"] not in out
    with authority.client() as client:
        assert client.audit(page_size=1).total == issued_before + 7  # incl. the revoked one
        late_cert = next(
            r
            for r in client.iter_audit()
            if r.target is not None and r.target.path == f"secret/bulk/{uid}/db-late#password"
        )
        assert late_cert.status == "revoked"

    # The role appears; the same command resumes: only db-late is rotated.
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role_missing}" LOGIN')
    code, report = rotate(capsys, "--inventory", str(path))
    assert code == 0
    by_name = {r["name"]: r for r in report["results"]}
    assert by_name["db-late"]["status"] == "created"
    assert report["summary"] == {"created": 1, "unchanged": 6}
    late = vault_value(openbao, f"bulk/{uid}/db-late")
    assert role_has_password(postgres, role_missing, late["password"])
    with authority.client() as client:
        assert client.audit(page_size=1).total == issued_before + 8

    # Drift on the target (someone reset the role's password): the next run repairs it.
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE \"{role_ok}\" PASSWORD '{scram_sha256_verifier('Other-9x')}'")
    code, report = rotate(capsys, "--inventory", str(path))
    assert code == 0
    assert report["summary"] in ({"unchanged": 7}, {"repaired": 1, "unchanged": 6})

    # A new epoch rotates everything, and revokes the previous certificates.
    code, report = rotate(capsys, "--inventory", str(path), "--epoch", "2027-q1")
    assert code == 0
    assert report["summary"] == {"rotated": 7}
    assert vault_value(openbao, f"bulk/{uid}/db-ok")["password"] != db_ok["password"]
    with authority.client() as client:
        old = client.get_certificate(by_name["app-0"]["cert_id"])
        assert old.status == "revoked" and old.revocation_reason == "rotated"


def test_table_output_and_bad_inventory(
    env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    uid: str,  # noqa: F811
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        f"epoch: e1\ncredentials:\n  - destination: vault://secret/table/{uid}\n    preset: hipaa\n"
    )
    assert main(["rotate", "--inventory", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "passgeni rotate" in out and out.rstrip().endswith("1 created")
    for text, needle in [
        ("credentials: []\n", "non-empty list"),
        ("credentials:\n  - destination: vault://secret\n    preset: soc2\n", "entry 1"),
        ("credentials:\n  - destination: vault://secret/a/b\n    preset: soc3\n", "soc3"),
        (
            "credentials:\n  - {destination: 'vault://secret/a/b', preset: soc2, colour: red}\n",
            "colour",
        ),
        ("credentials: [\n", "not valid YAML"),
    ]:
        path.write_text(text)
        assert main(["rotate", "--inventory", str(path)]) == 2
        assert needle in capsys.readouterr().err
