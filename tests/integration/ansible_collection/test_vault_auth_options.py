"""The credential module's Vault options, named as community.hashi_vault names them (issue #18).

``auth_method``, ``mount_point``, ``role_id`` and ``secret_id`` log the module in with AppRole
against a real OpenBao through the same ``VAULT_*`` parser as the CLI; ``-vvv`` never shows
the secret id, and a wrong one fails the task with one line that does not contain it.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import hvac

from .conftest import recap, run_playbook

PLAYBOOK = Path(__file__).parent / "playbooks" / "approle.yml"


def test_approle_options_log_in_and_never_show_the_secret_id(
    ansible_env: dict[str, str], authority: Any, openbao: Any, tmp_path: Path
) -> None:
    prefix = f"ansible-{secrets.token_hex(4)}"
    mount = f"approle-{prefix}"
    root = hvac.Client(url=openbao.url, token=openbao.token)
    root.sys.create_or_update_policy(
        prefix,
        f'path "secret/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}\n'
        f'path "secret/metadata/{prefix}/*" {{ capabilities = ["read", "patch", "update"] }}\n',
    )
    root.sys.enable_auth_method("approle", path=mount)
    root.auth.approle.create_or_update_approle("ci", token_policies=[prefix], mount_point=mount)
    role_id = root.auth.approle.read_role_id("ci", mount_point=mount)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("ci", mount_point=mount)["data"]["secret_id"]
    env = {**ansible_env, "PASSGENI_URL": authority.base_url, "PASSGENI_API_KEY": authority.api_key}
    extra = {
        "prefix": prefix,
        "vault_addr": openbao.url,
        "mount": mount,
        "role_id": role_id,
        "secret_id": secret_id,
        "out_dir": str(tmp_path),
    }
    proc = run_playbook(env, PLAYBOOK, "-vvv", "-e", json.dumps(extra))
    output = proc.stdout + proc.stderr
    results = json.loads((tmp_path / "approle.json").read_text())
    made, wrong = results["made"], results["wrong"]
    assert made["action"] == "created" and made["changed"] is True
    stored = root.secrets.kv.v2.read_secret_version(
        path=f"{prefix}/svc", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    assert stored["password.passgeni-cert-id"] == made["cert_id"]
    assert wrong["failed"] is True and wrong["error_code"] == "store_error"
    assert wrong["msg"].startswith("Vault approle login failed at ")
    assert f"/v1/auth/{mount}/login" in wrong["msg"] and "\n" not in wrong["msg"]
    for secret in (secret_id, secret_id[::-1], stored["password"], authority.api_key):
        assert secret not in output and secret not in json.dumps(results)
    assert recap(proc.stdout)["ignored"] == 1
