"""``passgeni terraform run`` (one provider process per command) and ``store_options`` (a KMS
key for new AWS secrets), with real Terraform, OpenBao and moto.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.terraform_external.provider_rig import (
    PROVIDER,
    cli_config,
    instance,
    no_traceback,
    tf,
    vault_version,
)
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import MotoServer, OpenBaoServer
from tests.support.terraform import Terraform

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

_FIXTURES = (cli_config, tf)  # imported for pytest


def passgeni_run(tf: Terraform, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "passgeni"), "terraform", "run", *args, "-no-color"],
        cwd=tf.workdir,
        env={**tf.env, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_terraform_run_serves_each_command_from_one_provider_process(
    tf: Terraform,
    openbao: OpenBaoServer,
    tmp_path: Path,
    uid: str,  # noqa: F811
) -> None:
    path = f"tf-run/{uid}"
    tf.write(
        PROVIDER
        + "".join(
            f"""
resource "passgeni_credential" "c{i}" {{
  destination = "vault://secret/{path}/c{i}#password"
  preset      = "soc2"
}}
"""
            for i in range(3)
        )
    )
    private = Path(tempfile.mkdtemp(prefix="pg-run-", dir="/tmp"))  # short: a socket's path
    log = tmp_path / "run.log"
    env = {"TMPDIR": str(private), "TF_LOG": "DEBUG", "TF_LOG_PATH": str(log)}
    done = passgeni_run(tf, "init", **env)
    assert done.returncode == 0, done.stderr
    for args in (("apply", "-auto-approve"), ("plan", "-detailed-exitcode")):
        log.unlink(missing_ok=True)
        done = passgeni_run(tf, *args, **env)
        assert done.returncode == 0, done.stdout + done.stderr
        no_traceback(done.stdout + done.stderr)
        assert "starting plugin" not in log.read_text()  # Terraform started no plugin itself
    assert "No changes" in done.stdout
    assert all(vault_version(openbao, f"{path}/c{i}") == 1 for i in range(3))
    assert list(private.iterdir()) == []  # the provider's socket directory is gone
    # `run init` installed the plugin and its checksum: plain Terraform works the same.
    plain = tf("plan", "-detailed-exitcode")
    assert plain.returncode == 0, plain.output
    # The usual plugin starts when asked for.
    log.unlink()
    done = passgeni_run(tf, "plan", "-detailed-exitcode", PASSGENI_TERRAFORM_ONE_PROCESS="0", **env)
    assert done.returncode == 0, done.stderr
    assert "starting plugin" in log.read_text()
    shutil.rmtree(private)


def kms_key(moto: MotoServer) -> dict[str, Any]:
    meta: dict[str, Any] = moto.boto3_client("kms").create_key(Description="passgeni tf")[
        "KeyMetadata"
    ]
    return meta


def test_store_options_kms_key_for_a_new_aws_secret(
    tf: Terraform,
    moto_server: MotoServer,
    uid: str,  # noqa: F811
) -> None:
    key = kms_key(moto_server)
    name = f"tf-kms/{uid}"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "api" {{
  destination   = "aws-sm://{name}#token"
  preset        = "soc2"
  store_options = {{ kms_key_id = "{key["Arn"]}" }}
}}
"""
    )
    tf("init").ok()
    tf("validate").ok()
    tf("apply", "-auto-approve").ok()
    sm = moto_server.boto3_client("secretsmanager")
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == key["Arn"]
    api = instance(tf, "api")
    assert api["status"] == "valid" and api["store_options"] == {"kms_key_id": key["Arn"]}
    assert tf("plan", "-detailed-exitcode").returncode == 0
    # Without the option, AWS's default key (moto names none).
    other = f"tf-kms/{uid}-default"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "api" {{
  destination = "aws-sm://{other}#token"
  preset      = "soc2"
}}
"""
    )
    tf("apply", "-auto-approve").ok()
    assert sm.describe_secret(SecretId=other).get("KmsKeyId") in (None, "", "aws/secretsmanager")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{ kms_key_id = "not a key id" }', "kms_key_id (PASSGENI_AWS_KMS_KEY_ID) must be"),
        ('{ kms = "alias/app" }', "store option 'kms' is not one the aws-sm:// backend takes"),
    ],
    ids=["bad value", "unknown name"],
)
def test_bad_store_options_are_a_diagnostic_naming_the_attribute(
    tf: Terraform,
    moto_server: MotoServer,
    uid: str,  # noqa: F811
    options: str,
    message: str,
) -> None:
    name = f"tf-kms-bad/{uid}"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "bad" {{
  destination   = "aws-sm://{name}#token"
  preset        = "soc2"
  store_options = {options}
}}
"""
    )
    tf("init").ok()
    done = tf("apply", "-auto-approve")
    assert done.returncode == 1, done.output
    no_traceback(done.output)
    assert "Error: store_options: " in done.stderr, done.stderr
    assert message in " ".join(done.stderr.split()), done.stderr
    listed = moto_server.boto3_client("secretsmanager").list_secrets()["SecretList"]
    assert name not in {s["Name"] for s in listed}  # nothing was written
