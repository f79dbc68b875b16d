"""``passgeni-terraform-external`` driven exactly as Terraform's ``external`` data source does.

Each run is a subprocess: the query as a JSON object of strings on stdin, the
configuration in the environment, then the exit status and stdout parsed as a
flat map of strings (an error: non-zero exit, one line on stderr, nothing on
stdout). The authority is the real app (uvicorn + SQLite), the stores are a
real OpenBao dev server and moto server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from passgeni_core import AuthorityClient
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import MotoServer, OpenBaoServer
from tests.support.proofs import aws_proof, vault_proof

pytestmark = pytest.mark.timeout(120)

SCRIPT = str(Path(sys.executable).parent / "passgeni-terraform-external")

REFERENCE_KEYS = {
    "cert_id",
    "cert_url",
    "compliance_standard",
    "standards_met",
    "entropy_bits",
    "expires_at",
    "destination",
    "version",
    "keeper",
    "mode",
    "status",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def result(self) -> dict[str, str]:
        """stdout as Terraform reads it: one flat JSON object of strings."""
        assert self.returncode == 0, self.stderr
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()), data
        return data

    def error(self) -> str:
        assert self.returncode != 0, self.stdout
        assert self.stdout == ""
        assert "Traceback" not in self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("passgeni-terraform-external: error [")
        return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def tf_env(
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    moto_server: MotoServer,
    tmp_path: Path,
) -> dict[str, str]:
    """The environment terraform would pass on: authority, Vault and AWS settings."""
    config = tmp_path / "passgeni.toml"
    config.write_text("")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PASSGENI_", "VAULT_", "AWS_", "BAO_"))
    }
    env.update(
        HOME=str(tmp_path),
        PASSGENI_CONFIG=str(config),
        PASSGENI_URL=authority.url,
        PASSGENI_API_KEY=authority.api_key,
        PASSGENI_ISSUER=authority.embedded.issuer,
        VAULT_ADDR=openbao.url,
        VAULT_TOKEN=openbao.token,
        AWS_ENDPOINT_URL=moto_server.url,
        AWS_REGION=moto_server.region,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def terraform_run(
    query: Mapping[str, str] | bytes | str,
    env: Mapping[str, str],
    *,
    argv: tuple[str, ...] = (SCRIPT,),
) -> Run:
    data = (
        query
        if isinstance(query, bytes)
        else query.encode()
        if isinstance(query, str)
        else json.dumps(query).encode()
    )
    done = subprocess.run(
        list(argv), input=data, capture_output=True, env=dict(env), timeout=60, check=False
    )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


def audit_total(authority: Authority) -> int:  # noqa: F811
    with authority.client(issuer=authority.embedded.issuer) as client:
        return client.audit(page_size=1).total


def stored(openbao: OpenBaoServer, path: str) -> tuple[dict[str, str], int]:
    read = openbao.hvac_client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )
    return read["data"]["data"], int(read["data"]["metadata"]["version"])


def test_ensure_mode_idempotent_and_holds_no_secret(
    tf_env: dict[str, str],
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    query = {
        "preset": "soc2",
        "destination": f"vault://secret/tf/{uid}#password",
        "keeper": "v1",
        "mode": "ensure",
    }
    first = terraform_run(query, tf_env)
    result = first.result()
    assert set(result) == REFERENCE_KEYS
    assert result["mode"] == "ensure" and result["keeper"] == "v1" and result["status"] == "valid"
    assert result["destination"] == f"vault://secret/tf/{uid}#password"
    assert result["compliance_standard"] == "SOC2"
    assert "SOC2" in result["standards_met"].split(",")
    assert float(result["entropy_bits"]) > 60
    assert result["cert_url"].endswith(result["cert_id"])
    data, version = stored(openbao, f"tf/{uid}")
    assert result["version"] == str(version)
    assert set(data) == {"password"}
    proof = vault_proof(openbao.hvac_client(), f"tf/{uid}")
    assert proof["cert_id"] == result["cert_id"]
    # State hygiene: neither the password nor the seed is anywhere in the output.
    for secret in (data["password"], proof["seed"]):
        assert secret not in first.stdout and secret not in first.stderr
    meta = openbao.hvac_client().secrets.kv.v2.read_secret_metadata(
        path=f"tf/{uid}", mount_point="secret"
    )["data"]["custom_metadata"]
    assert meta["passgeni-cert-id"] == result["cert_id"]

    # Every later plan with the same keeper: same result, no new certificate, no new version.
    issued = audit_total(authority)
    for _ in range(2):
        again = terraform_run(query, tf_env)
        assert again.result() == result
    assert audit_total(authority) == issued
    assert stored(openbao, f"tf/{uid}") == (data, version)

    # A new keeper rotates: a new certificate and version; the old certificate is revoked.
    rotated = terraform_run({**query, "keeper": "v2"}, tf_env).result()
    assert rotated["cert_id"] != result["cert_id"]
    assert int(rotated["version"]) == version + 1
    assert audit_total(authority) == issued + 1
    new_data, _ = stored(openbao, f"tf/{uid}")
    assert new_data["password"] != data["password"]
    with authority.client(issuer=authority.embedded.issuer) as client:
        old = client.get_certificate(result["cert_id"])
        assert old.status == "revoked" and old.revocation_reason == "rotated"
        assert client.get_certificate(rotated["cert_id"]).label == "keeper=v2"
    assert terraform_run({**query, "keeper": "v2"}, tf_env).result() == rotated


def test_read_mode_is_the_default_and_writes_nothing(
    tf_env: dict[str, str],
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    """Without a mode, a destination is only read and judged: what a plan may do."""
    path = f"tf-read/{uid}"
    query = {"preset": "soc2", "destination": f"vault://secret/{path}#password", "keeper": "v1"}
    issued = audit_total(authority)
    empty = terraform_run(query, tf_env).result()
    assert empty["mode"] == "read" and empty["status"] == "no_certificate"
    assert empty["cert_id"] == "" and empty["version"] == ""
    assert audit_total(authority) == issued
    listed = openbao.hvac_client().adapter.request(
        "LIST", f"v1/secret/metadata/{path}", raise_exception=False
    )
    assert getattr(listed, "status_code", None) == 404  # not even metadata

    made = terraform_run({**query, "mode": "ensure"}, tf_env).result()
    issued = audit_total(authority)
    read = terraform_run(query, tf_env)
    seen = read.result()
    assert seen["status"] == "valid" and seen["mode"] == "read"
    for key in ("cert_id", "cert_url", "version", "expires_at", "keeper", "standards_met"):
        assert seen[key] == made[key], key
    data, version = stored(openbao, path)
    seed = vault_proof(openbao.hvac_client(), path)["seed"]
    assert data["password"] not in read.stdout and seed not in read.stdout

    # A new keeper in a plan: reported, nothing rotated.
    other = terraform_run({**query, "keeper": "v2"}, tf_env).result()
    assert other["status"] == "below_requirement" and other["cert_id"] == made["cert_id"]
    assert stored(openbao, path) == (data, version) and audit_total(authority) == issued

    # Changed by hand: drifted. Revoked: revoked.
    openbao.hvac_client().secrets.kv.v2.patch(
        path=path, mount_point="secret", secret={"password": "typed-by-hand-" + uid}
    )
    assert terraform_run(query, tf_env).result()["status"] == "drifted"
    terraform_run({**query, "mode": "ensure"}, tf_env).result()
    fresh = terraform_run(query, tf_env).result()
    assert fresh["status"] == "valid"
    with authority.client(issuer=authority.embedded.issuer) as client:
        client.revoke(fresh["cert_id"], "compromised")
    assert terraform_run(query, tf_env).result()["status"] == "revoked"


def test_ensure_mode_aws_secrets_manager(
    tf_env: dict[str, str],
    moto_server: MotoServer,
    uid: str,  # noqa: F811
) -> None:
    query = {
        "preset": "pci-dss",
        "destination": f"aws-sm://tf/{uid}#pw",
        "keeper": "2026-11",
        "mode": "ensure",
    }
    first = terraform_run(query, tf_env)
    result = first.result()
    assert set(result) == REFERENCE_KEYS
    value = json.loads(
        moto_server.boto3_client().get_secret_value(
            SecretId=f"tf/{uid}", VersionStage="AWSCURRENT"
        )["SecretString"]
    )
    proof = aws_proof(moto_server.boto3_client(), f"tf/{uid}", "pw")
    assert set(value) == {"pw"} and proof["cert_id"] == result["cert_id"]
    assert value["pw"] not in first.stdout and proof["seed"] not in first.stdout
    assert terraform_run(query, tf_env).result() == result


def test_ensure_mode_aws_store_options_kms_key(
    tf_env: dict[str, str],
    moto_server: MotoServer,
    uid: str,  # noqa: F811
) -> None:
    key = moto_server.boto3_client("kms").create_key(Description="passgeni tf")["KeyMetadata"]
    query = {
        "preset": "soc2",
        "destination": f"aws-sm://tf-kms/{uid}#pw",
        "mode": "ensure",
        "store_options": json.dumps({"kms_key_id": key["KeyId"]}),
    }
    assert terraform_run(query, tf_env).result()["status"] == "valid"
    described = moto_server.boto3_client().describe_secret(SecretId=f"tf-kms/{uid}")
    assert described["KmsKeyId"] == key["KeyId"]
    bad = {**query, "destination": f"aws-sm://tf-kms/{uid}-bad#pw"}
    for options in ('{"kms_key_id": "two words"}', '{"kms": "alias/x"}'):
        line = terraform_run({**bad, "store_options": options}, tf_env).error()
        assert "[invalid_request]" in line and "kms" in line
    listed = moto_server.boto3_client().list_secrets()["SecretList"]
    assert f"tf-kms/{uid}-bad" not in {s["Name"] for s in listed}


def test_return_mode(
    tf_env: dict[str, str],
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    # Without a destination: the password is in the result, and each run makes a new one.
    asked = {"preset": "hipaa", "length": "20", "exclude": "@/\"'", "mode": "return"}
    one = terraform_run(asked, tf_env).result()
    two = terraform_run(asked, tf_env).result()
    assert set(one) == REFERENCE_KEYS | {"password", "seed"}
    assert one["mode"] == "return" and one["destination"] == ""
    assert len(one["password"]) == 20 and not set(one["password"]) & set("@/\"'")
    assert one["password"] != two["password"] and one["cert_id"] != two["cert_id"]
    # With a destination and a keeper: the stored password, the same on every plan.
    query = {
        "preset": "soc2",
        "destination": f"vault://secret/tf-return/{uid}",
        "keeper": "a",
        "mode": "return",
    }
    first = terraform_run(query, tf_env).result()
    data, _ = stored(openbao, f"tf-return/{uid}")
    assert first["password"] == data["password"]
    assert first["seed"] == vault_proof(openbao.hvac_client(), f"tf-return/{uid}")["seed"]
    assert terraform_run(query, tf_env).result() == first


def test_python_dash_m_and_help(tf_env: dict[str, str]) -> None:
    env = {**tf_env, "PASSGENI_TF_VALIDATE_ONLY": "1"}
    asked = {"preset": "soc2", "mode": "return"}
    run = terraform_run(asked, env, argv=(sys.executable, "-m", "terraform_external"))
    assert run.result() == {}
    assert terraform_run(asked, env, argv=(SCRIPT, "extra")).error()


BAD_QUERIES: list[tuple[str, bytes | str | dict[str, str], str]] = [
    ("empty stdin", b"", "invalid_request"),
    ("not JSON", b"{preset: soc2}", "invalid_request"),
    ("not UTF-8", b'{"preset": "\xff"}', "invalid_request"),
    ("a JSON array", b'["soc2"]', "invalid_request"),
    ("a number value", b'{"preset": "soc2", "length": 20}', "invalid_request"),
    ("a null value", b'{"preset": null}', "invalid_request"),
    ("a boolean value", b'{"preset": "soc2", "upper": true}', "invalid_request"),
    ("a nested object", b'{"preset": {"id": "soc2"}}', "invalid_request"),
    ("duplicate keys", b'{"preset": "soc2", "preset": "hipaa"}', "invalid_request"),
    ("unknown key", {"preset": "soc2", "lenght": "20"}, "invalid_request"),
    ("api key in the query", {"preset": "soc2", "api_key": "pg_x_y"}, "invalid_request"),
    ("missing preset", {"length": "20"}, "invalid_request"),
    ("unknown preset", {"preset": "soc3"}, "unknown_preset"),
    ("bad boolean", {"preset": "soc2", "upper": "yes please"}, "invalid_parameters"),
    ("bad integer", {"preset": "soc2", "length": "2e1"}, "invalid_parameters"),
    ("too short for preset", {"preset": "pci-dss", "length": "6"}, "preset_not_met"),
    ("the old store mode", {"preset": "soc2", "mode": "store"}, "invalid_request"),
    ("no destination, no mode", {"preset": "soc2"}, "invalid_request"),
    ("ensure without destination", {"preset": "soc2", "mode": "ensure"}, "invalid_request"),
    ("read without destination", {"preset": "soc2", "mode": "read"}, "invalid_request"),
    ("bad mode", {"preset": "soc2", "mode": "print"}, "invalid_request"),
    ("destination shape", {"preset": "soc2", "destination": "secret/app"}, "invalid_store_uri"),
    (
        "destination grammar",
        {"preset": "soc2", "destination": "vault://secret"},
        "invalid_store_uri",
    ),
    ("unknown scheme", {"preset": "soc2", "destination": "gopher://x/y"}, "unknown_store_scheme"),
    ("control char keeper", {"preset": "soc2", "keeper": "a\nb"}, "invalid_request"),
    ("bad timeout", {"preset": "soc2", "timeout": "nan"}, "invalid_request"),
    (
        "store_options not a JSON object",
        {"preset": "soc2", "destination": "vault://secret/x#pw", "store_options": "kms=x"},
        "invalid_request",
    ),
    (
        "store_options without destination",
        {"preset": "soc2", "mode": "return", "store_options": '{"kms_key_id": "alias/x"}'},
        "invalid_request",
    ),
]


@pytest.mark.parametrize(
    ("query", "code"), [(q, c) for _, q, c in BAD_QUERIES], ids=[n for n, _, _ in BAD_QUERIES]
)
def test_every_bad_query_is_one_line_error(
    tf_env: dict[str, str], query: bytes | str | dict[str, str], code: str
) -> None:
    line = terraform_run(query, tf_env).error()
    assert f"[{code}]" in line


def test_unreachable_authority_and_store(
    tf_env: dict[str, str],
    uid: str,  # noqa: F811
) -> None:
    query = {
        "preset": "soc2",
        "destination": f"vault://secret/tf-down/{uid}",
        "keeper": "1",
        "mode": "ensure",
    }
    no_authority = {**tf_env, "PASSGENI_URL": f"http://127.0.0.1:{closed_port()}"}
    line = terraform_run(query, no_authority).error()
    assert "[authority_unavailable]" in line
    assert tf_env["PASSGENI_API_KEY"] not in line
    no_vault = {**tf_env, "VAULT_ADDR": f"http://127.0.0.1:{closed_port()}"}
    line = terraform_run(query, no_vault).error()
    assert "[store_unavailable]" in line
    assert tf_env["VAULT_TOKEN"] not in line
    # Neither failure left a certificate behind in the store.
    with AuthorityClient(tf_env["PASSGENI_URL"], tf_env["PASSGENI_API_KEY"]) as client:
        assert all(f"tf-down/{uid}" not in str(r.target) for r in client.audit().items)


def test_no_authority_configured_fails_closed_and_embedded_is_asked_for(
    tf_env: dict[str, str],
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    """No authority anywhere: the error form, nothing in Vault. ``authority_url = "embedded"``
    runs a throwaway one, whose certificate says so."""
    unconfigured = {
        k: v for k, v in tf_env.items() if k not in ("PASSGENI_URL", "PASSGENI_API_KEY")
    }
    unconfigured.pop("PASSGENI_ISSUER")
    query = {"preset": "soc2", "destination": f"vault://secret/tf-closed/{uid}", "keeper": "1"}
    line = terraform_run(query, unconfigured).error()
    assert "[authority_not_configured]" in line and 'authority_url = "embedded"' in line
    listed = openbao.hvac_client().adapter.request(
        "LIST", f"v1/secret/metadata/tf-closed/{uid}", raise_exception=False
    )
    assert getattr(listed, "status_code", None) == 404  # nothing written, not even metadata
    made = terraform_run(
        {"preset": "soc2", "mode": "return", "authority_url": "embedded"},
        {**unconfigured, "XDG_DATA_HOME": str(Path(unconfigured["HOME"]) / "xdg")},
    ).result()
    assert made["cert_url"].startswith("embedded:") and made["password"]
