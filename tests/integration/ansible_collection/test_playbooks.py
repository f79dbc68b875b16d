"""Real ``ansible-playbook`` runs of the installed collection against a real authority,
OpenBao (Vault API) and moto (AWS Secrets Manager)."""

from __future__ import annotations

from tests.support.proofs import vault_proof
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import hvac
import pytest

from .conftest import ansible_bin, recap, run_playbook

PLAYBOOKS = Path(__file__).parent / "playbooks"
VAULT_ACCOUNTS = ["svc-billing", "svc-reports", "svc-etl"]
AWS_ACCOUNTS = ["svc-payments", "svc-ledger"]


def _env(ansible_env: dict[str, str], authority: Any) -> dict[str, str]:
    return {
        **ansible_env,
        "PASSGENI_URL": authority.base_url,
        "PASSGENI_API_KEY": authority.api_key,
    }


def _extra(prefix: str, openbao: Any, moto_server: Any, tmp_path: Path, **more: str) -> list[str]:
    data = {
        "prefix": prefix,
        "vault_addr": openbao.url,
        "vault_token": openbao.token,
        "aws_endpoint": moto_server.url,
        "results_file": str(tmp_path / "results.json"),
        **more,
    }
    return ["-e", json.dumps(data)]


def _vault_state(openbao: Any, prefix: str) -> dict[str, dict[str, Any]]:
    client = hvac.Client(url=openbao.url, token=openbao.token)
    out = {}
    for name in VAULT_ACCOUNTS:
        path = f"{prefix}/{name}"
        meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]
        value = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point="secret", raise_on_deleted_version=True
        )["data"]["data"]
        out[name] = {"meta": meta["custom_metadata"] or {}, "password": value["password"]}
    return out


def _aws_state(moto_server: Any, prefix: str) -> dict[str, dict[str, Any]]:
    client = moto_server.boto3_client("secretsmanager")
    out = {}
    for name in AWS_ACCOUNTS:
        secret_id = f"{prefix}/{name}"
        tags = {t["Key"]: t["Value"] for t in client.describe_secret(SecretId=secret_id)["Tags"]}
        value = json.loads(
            client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
        )
        out[name] = {"meta": tags, "password": value["password"]}
    return out


def test_provision_idempotent_then_forced_rotation(
    ansible_env: dict[str, str], authority: Any, openbao: Any, moto_server: Any, tmp_path: Path
) -> None:
    prefix = f"ansible-{secrets.token_hex(4)}"
    env = _env(ansible_env, authority)
    extra = _extra(prefix, openbao, moto_server, tmp_path)
    playbook = PLAYBOOKS / "provision.yml"

    # 1. First run: every credential is created, certified and stored with its references.
    first = run_playbook(env, playbook, *extra)
    assert recap(first.stdout)["changed"] == 2, first.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    items = results["vault"] + results["aws"]
    assert [i["action"] for i in items] == ["created"] * 5
    assert all(i["changed"] for i in items)
    assert all("password" not in i for i in items)
    vault1, aws1 = _vault_state(openbao, prefix), _aws_state(moto_server, prefix)
    for item, (name, state) in zip(items, [*vault1.items(), *aws1.items()], strict=True):
        meta = state["meta"]
        assert meta["passgeni-cert-id"] == item["cert_id"]
        assert meta["passgeni-cert-url"] == item["cert_url"]
        assert meta["passgeni-standard"] == item["compliance_standard"]
        assert meta["passgeni-expires-at"] == item["expires_at"]
        assert item["cert_url"].startswith(authority.base_url)
        assert item["destination"].endswith(f"/{name}#password")
        assert item["entropy_bits"] > 60 and item["compliance_standard"] in item["standards_met"]
    assert {v["meta"]["passgeni-standard"] for v in vault1.values()} == {"SOC2"}
    assert {v["meta"]["passgeni-standard"] for v in aws1.values()} == {"PCI-DSS"}
    assert all(v["meta"]["passgeni-kv-version"] == "1" for v in vault1.values())

    # 2. Second run: nothing to do.
    second = run_playbook(env, playbook, *extra)
    assert recap(second.stdout)["changed"] == 0, second.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    kept = results["vault"] + results["aws"]
    assert [i["action"] for i in kept] == ["none"] * 5
    assert [i["cert_id"] for i in kept] == [i["cert_id"] for i in items]
    assert _vault_state(openbao, prefix) == vault1 and _aws_state(moto_server, prefix) == aws1

    # 3. Check mode needs neither the authority nor a write: a dead authority URL still works.
    dead = {"PASSGENI_URL": "http://127.0.0.1:9"}
    checked = run_playbook(env, playbook, "--check", "--diff", *extra, extra_env=dead)
    assert recap(checked.stdout)["changed"] == 0, checked.stdout
    assert _vault_state(openbao, prefix) == vault1 and _aws_state(moto_server, prefix) == aws1

    # 4. Forced run: everything rotates; the old certificates are revoked after the new store.
    forced = run_playbook(
        env, playbook, *_extra(prefix, openbao, moto_server, tmp_path, force="true")
    )
    assert recap(forced.stdout)["changed"] == 2, forced.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    rotated = results["vault"] + results["aws"]
    assert [i["action"] for i in rotated] == ["rotated"] * 5
    assert [i["previous_cert_id"] for i in rotated] == [i["cert_id"] for i in items]
    vault2, aws2 = _vault_state(openbao, prefix), _aws_state(moto_server, prefix)
    for item, state in zip(rotated, [*vault2.values(), *aws2.values()], strict=True):
        assert state["meta"]["passgeni-cert-id"] == item["cert_id"]
        assert state["meta"]["passgeni-cert-url"] == item["cert_url"]
    for name in VAULT_ACCOUNTS:
        assert vault2[name]["password"] != vault1[name]["password"]
        assert vault2[name]["meta"]["passgeni-kv-version"] == "2"
    for name in AWS_ACCOUNTS:
        assert aws2[name]["password"] != aws1[name]["password"]
    from passgeni_core import AuthorityClient

    with AuthorityClient(authority.base_url, authority.api_key) as client:
        for old in items:
            record = client.get_certificate(old["cert_id"])
            assert record.status == "revoked" and record.revocation_reason == "rotated"
        for new in rotated:
            assert client.get_certificate(new["cert_id"]).status == "valid"


@pytest.mark.parametrize("execute_on", ["auto", "host"])
def test_vvv_output_never_shows_a_secret(
    ansible_env: dict[str, str], authority: Any, openbao: Any, tmp_path: Path, execute_on: str
) -> None:
    """On both paths: the controller's worker (auto on localhost) and the module on the host."""
    prefix = f"ansible-{secrets.token_hex(4)}"
    env = _env(ansible_env, authority)
    extra = {
        "prefix": prefix,
        "vault_addr": openbao.url,
        "vault_token": openbao.token,
        "out_dir": str(tmp_path),
        "execute_on": execute_on,
    }
    proc = run_playbook(
        env, PLAYBOOKS / "secrets_vvv.yml", "-vvv", "--diff", "-e", json.dumps(extra)
    )
    output = proc.stdout + proc.stderr
    client = hvac.Client(url=openbao.url, token=openbao.token)
    value = client.secrets.kv.v2.read_secret_version(
        path=f"{prefix}/svc-audit", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    generated = {
        "vault": value["password"],
        "vault generation seed": vault_proof(client, f"{prefix}/svc-audit")["seed"],
        "returned": (tmp_path / "returned.txt").read_text(),
        "lookup": (tmp_path / "lookup.txt").read_text(),
    }
    assert all(len(s) >= 12 for s in generated.values())
    for what, secret in generated.items():
        assert secret not in output, f"the {what} password appears in the -vvv output"
    assert authority.api_key not in output
    assert "Traceback" not in output
    # The output is really verbose, and the censored results say why they are hidden.
    assert "ESTABLISH LOCAL CONNECTION" in output
    assert "the output has been hidden" in output
    # The lookup outside no_log refused, saying why, and certified nothing.
    assert "refusing to generate a password the task may show" in output
    from passgeni_core import AuthorityClient

    with AuthorityClient(authority.base_url, authority.api_key) as client:
        labels = {r.label for r in client.iter_audit()}
    assert "svc-template" in labels and "svc-shown" not in labels
    assert recap(proc.stdout)["failed"] == 0


def test_missing_library_is_reported_the_ansible_way(
    ansible_env: dict[str, str], tmp_path: Path
) -> None:
    """A managed host without the passgeni library gets missing_required_lib, not a traceback."""
    bare = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    probe = subprocess.run(
        [str(bare), "-c", "import passgeni_core"], cwd=tmp_path, capture_output=True
    )
    # The test needs a Python without passgeni: the base interpreter of the venv
    # make test creates. A developer who pip-installed passgeni into it globally
    # has no such interpreter, which is the only case this skip covers.
    if probe.returncode == 0:
        pytest.skip(f"{bare} has passgeni installed")
    proc = subprocess.run(
        [
            ansible_bin("ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "passgeni.compliance.credential",
            "-a",
            json.dumps({"preset": "soc2"}),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**ansible_env, "ANSIBLE_PYTHON_INTERPRETER": str(bare)},
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Failed to import the required Python library (passgeni)" in proc.stdout
    assert '"error_code": "missing_library"' in proc.stdout
