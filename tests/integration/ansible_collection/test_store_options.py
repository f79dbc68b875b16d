"""The credential module's ``store_options`` reach the backend (a KMS key, on moto)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from .conftest import recap, run_playbook

PLAYBOOK = Path(__file__).parent / "playbooks" / "store_options.yml"


def test_kms_key_id_as_a_store_option(
    ansible_env: dict[str, str], authority: Any, moto_server: Any
) -> None:
    env = {**ansible_env, "PASSGENI_URL": authority.base_url, "PASSGENI_API_KEY": authority.api_key}
    key = moto_server.boto3_client("kms").create_key()["KeyMetadata"]["Arn"]
    name = f"ansible-kms-{secrets.token_hex(4)}/db"
    extra = {"name": name, "kms_key": key, "aws_endpoint": moto_server.url}
    done = run_playbook(env, PLAYBOOK, "-e", json.dumps(extra))
    assert recap(done.stdout)["changed"] == 1, done.stdout
    described = moto_server.boto3_client("secretsmanager").describe_secret(SecretId=name)
    assert described["KmsKeyId"] == key

    # A name the backend does not take fails the task, naming those it does; nothing is written.
    bad = {**extra, "name": name + "-x", "option_name": "kms_keyid"}
    failed = run_playbook(env, PLAYBOOK, "-e", json.dumps(bad), check=False)
    assert failed.returncode != 0 and recap(failed.stdout)["failed"] == 1
    assert "kms_key_id" in failed.stdout and "Traceback" not in failed.stdout
    listed = moto_server.boto3_client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in listed if s["Name"] == name + "-x"]
