"""The controller path (``execute_on: controller``, the default on localhost) decides as the module.

Issue #18, item 12: the items of a loop share one authority session and one Vault client
when the work runs in the controller's worker process. Two identical sets of credentials in
a real OpenBao, against a served authority: one kept, one changed by hand (a conflict), one
whose certificate was revoked (a rotation), one never created. Check mode and then the real
run on each path give the same outcome for every item.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import hvac

from passgeni_core import AuthorityClient, parse_store_uri

from .conftest import run_playbook

PLAYBOOK = Path(__file__).parent / "playbooks" / "loop.yml"
NAMES = ["svc-kept", "svc-by-hand", "svc-revoked", "svc-kept-2"]


def _loop(env: dict[str, str], tmp_path: Path, extra: dict[str, Any], *args: str) -> list[Any]:
    results = tmp_path / f"results-{secrets.token_hex(3)}.json"
    run_playbook(env, PLAYBOOK, *args, "-e", json.dumps({**extra, "results_file": str(results)}))
    return json.loads(results.read_text())


def _outcome(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["item"],
        item.get("changed"),
        bool(item.get("failed")),
        item.get("action"),
        item.get("error_code"),
    )


def _prepared(
    env: dict[str, str], tmp_path: Path, authority: Any, openbao: Any, execute_on: str
) -> dict[str, Any]:
    """Credentials at a fresh prefix: created (all but the last), one changed, one revoked."""
    extra = {
        "prefix": f"ansible-loop-{secrets.token_hex(4)}",
        "names": NAMES[:-1],
        "vault_addr": openbao.url,
        "vault_token": openbao.token,
        "execute_on": execute_on,
    }
    created = _loop(env, tmp_path, extra)
    assert [(i["action"], i["execute_on"]) for i in created] == [("created", execute_on)] * 3
    client = hvac.Client(url=openbao.url, token=openbao.token)
    client.secrets.kv.v2.create_or_update_secret(
        path=f"{extra['prefix']}/svc-by-hand",
        mount_point="secret",
        secret={"password": "set-by-hand-0123456789"},
    )
    with AuthorityClient(authority.base_url, authority.api_key) as passgeni:
        passgeni.revoke(created[2]["cert_id"], "key compromise")
    return {**extra, "names": NAMES}


def test_controller_and_host_paths_decide_alike(
    ansible_env: dict[str, str], authority: Any, openbao: Any, tmp_path: Path
) -> None:
    env = {
        **ansible_env,
        "PASSGENI_URL": authority.base_url,
        "PASSGENI_API_KEY": authority.api_key,
    }
    runs: dict[str, dict[str, list[Any]]] = {}
    for path in ("host", "controller"):
        extra = _prepared(env, tmp_path, authority, openbao, path)
        checked = _loop(env, tmp_path, extra, "--check")
        real = _loop(env, tmp_path, extra)
        again = _loop(env, tmp_path, extra)
        runs[path] = {"check": checked, "real": real, "again": again}
        assert {i.get("execute_on") for i in checked + real + again} == {path}, (checked, real)
    for run in ("check", "real", "again"):
        host = [_outcome(i) for i in runs["host"][run]]
        controller = [_outcome(i) for i in runs["controller"][run]]
        assert controller == host, run
    expected = [
        ("svc-kept", False, False, "none", None),
        ("svc-by-hand", False, True, None, "store_conflict"),
        ("svc-revoked", True, False, "rotated", None),
        ("svc-kept-2", True, False, "created", None),
    ]
    assert [_outcome(i) for i in runs["controller"]["check"]] == expected
    assert [_outcome(i) for i in runs["controller"]["real"]] == expected
    # The rotation and the creation are done: the next run keeps them; the conflict stays.
    kept = [("svc-revoked", False, False, "none", None), ("svc-kept-2", False, False, "none", None)]
    assert [_outcome(i) for i in runs["controller"]["again"]] == expected[:2] + kept
    conflict = runs["controller"]["real"][1]
    assert "force: true" in conflict["msg"] and "set-by-hand" not in conflict["msg"]
    assert runs["controller"]["real"][2]["cert_id"] != runs["controller"]["check"][2]["cert_id"]


def test_auto_runs_on_the_controller_for_localhost(
    ansible_env: dict[str, str], authority: Any, openbao: Any, tmp_path: Path
) -> None:
    env = {**ansible_env, "PASSGENI_URL": authority.base_url, "PASSGENI_API_KEY": authority.api_key}
    extra = {
        "prefix": f"ansible-auto-{secrets.token_hex(4)}",
        "names": ["svc-a", "svc-b"],
        "vault_addr": openbao.url,
        "vault_token": openbao.token,
        "execute_on": "auto",
    }
    first = _loop(env, tmp_path, extra)
    assert [(i["action"], i["execute_on"]) for i in first] == [("created", "controller")] * 2
    # A forced rotation of every item, through the kept connections.
    forced = _loop(env, tmp_path, {**extra, "force": True})
    assert [i["action"] for i in forced] == ["rotated"] * 2
    assert [i["cert_id"] for i in forced] != [i["cert_id"] for i in first]


def test_kept_connections_are_keyed_by_every_option(
    installed_collection: Path, authority: Any, openbao: Any
) -> None:
    """One client per authority and one store per set of options; the same judge each call."""
    sys.path.insert(0, str(installed_collection))
    try:
        from ansible_collections.passgeni.compliance.plugins.module_utils import passgeni as mu
        from ansible_collections.passgeni.compliance.plugins.module_utils.reuse import (
            Connections,
        )
    finally:
        sys.path.remove(str(installed_collection))
    kept = Connections()
    uri = parse_store_uri("vault://secret/x#password")
    env = {"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.token}
    store = kept.store(uri, {"environ": env})
    assert kept.store(uri, {"environ": dict(env)}) is store
    other = kept.store(uri, {"environ": {**env, "VAULT_TOKEN": "another-token"}})
    assert other is not store
    params = {
        "preset": "soc2",
        "state": "present",
        "force": False,
        "rotate_before": 30,
        "label": None,
        "timeout": None,
        "length": None,
        "exclude": "",
        "exclude_lookalikes": False,
        "special_chars": None,
        "url": authority.base_url,
        "api_key": authority.api_key,
        "token": openbao.token,
        "destination": f"vault://secret/ansible-kept-{secrets.token_hex(4)}/db#password",
    }
    os.environ["VAULT_ADDR"] = openbao.url
    try:
        created, password = mu.ensure_credential(params, connections=kept)
        assert created["action"] == "created" and password is not None
        for check_mode in (True, False):
            with_kept, _ = mu.ensure_credential(params, check_mode=check_mode, connections=kept)
            alone, _ = mu.ensure_credential(params, check_mode=check_mode)
            assert with_kept == alone and with_kept["action"] == "none"
        clients = [kept.authority(mu.require_authority(params)) for _ in range(2)]
        with clients[0] as first, clients[1] as second:
            assert first is second
    finally:
        del os.environ["VAULT_ADDR"]
        kept.close()


def test_a_store_is_kept_per_environment(installed_collection: Path, openbao: Any) -> None:
    """Per-item ``environment:`` (another VAULT_TOKEN per item) never shares a Vault client."""
    sys.path.insert(0, str(installed_collection))
    try:
        from ansible_collections.passgeni.compliance.plugins.module_utils.reuse import (
            Connections,
        )
    finally:
        sys.path.remove(str(installed_collection))
    kept = Connections()
    uri = parse_store_uri("vault://secret/x#password")
    saved = {k: os.environ.get(k) for k in ("VAULT_ADDR", "VAULT_TOKEN")}
    try:
        os.environ.update(VAULT_ADDR=openbao.url, VAULT_TOKEN=openbao.token)
        first = kept.store(uri, {})
        assert kept.store(uri, {}) is first
        os.environ["VAULT_TOKEN"] = "another-token"
        assert kept.store(uri, {}) is not first
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        kept.close()
