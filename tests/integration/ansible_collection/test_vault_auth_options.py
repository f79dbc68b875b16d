"""The credential module's Vault options, named as community.hashi_vault names them (issue #18).

``auth_method``, ``mount_point``, ``role_id`` and ``secret_id`` log the module in with AppRole
against a real OpenBao through the same ``VAULT_*`` parser as the CLI; ``-vvv`` never shows
the secret id, and a wrong one fails the task with one line that does not contain it.
"""

from __future__ import annotations

from tests.support.proofs import vault_proof
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
        f'path "secret/data/passgeni-proof/{prefix}/*" '
        '{ capabilities = ["create", "read", "update"] }\n'
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
    assert set(stored) == {"password"}
    assert vault_proof(root, f"{prefix}/svc")["cert_id"] == made["cert_id"]
    assert wrong["failed"] is True and wrong["error_code"] == "store_error"
    assert wrong["msg"].startswith("Vault approle login failed at ")
    assert f"/v1/auth/{mount}/login" in wrong["msg"] and "\n" not in wrong["msg"]
    for secret in (secret_id, secret_id[::-1], stored["password"], authority.api_key):
        assert secret not in output and secret not in json.dumps(results)
    assert recap(proc.stdout)["ignored"] == 1


def test_options_map_to_the_variables_the_cli_reads(installed_collection: Path) -> None:
    import sys

    sys.path.insert(0, str(installed_collection))
    try:
        from ansible_collections.passgeni.compliance.plugins.module_utils import vault_options
    finally:
        sys.path.remove(str(installed_collection))
    from vault_plugin_helper.vault import vault_config_from_environ

    host = {"VAULT_ADDR": "https://vault.example:8200", "VAULT_TOKEN": "hvs.from-the-host"}
    none = dict.fromkeys(vault_options.vault_argument_spec())
    assert vault_options.vault_environ(none, host) is None  # no option: the host's own
    params = {**none, "auth_method": "jwt", "role_id": "ci", "jwt": "e.y.j", "namespace": "t"}
    env = vault_options.vault_environ(params, host)
    assert env is not None and "VAULT_TOKEN" not in env  # the host's token does not stand in
    config = vault_config_from_environ(env)
    assert (config.auth_method, config.role, config.jwt, config.namespace) == (
        "jwt",
        "ci",
        "e.y.j",
        "t",
    )
    params = {**none, "auth_method": "approle", "role_id": "r-1", "secret_id": "s-1",
              "mount_point": "team-approle", "validate_certs": False}  # fmt: skip
    config = vault_config_from_environ(vault_options.vault_environ(params, host))
    assert (config.role_id, config.secret_id, config.mount) == ("r-1", "s-1", "team-approle")
    assert config.verify is False and config.addr == "https://vault.example:8200"
