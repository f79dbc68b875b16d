"""No generated password or binding key leaks: logs, requests to the authority, files.

The main flows run against real servers with every logger at DEBUG:

* the CLI: ``passgeni provision --store`` (create, then ``--rotate``) into
  OpenBao, moto and the Kubernetes emulator;
* the Terraform external program (ensure mode);
* the AWS Secrets Manager rotation handler (all four steps, in process);
* Ansible: a playbook with ``passgeni.compliance.credential`` run with ``-vvv``.

Captured: every log line (the authority's own, at DEBUG, and each flow's
stdout/stderr or log records), every byte sent to the authority (a recording
TCP proxy in front of it is the only way to reach it), and every file written
under the temporary HOME / XDG directories the flows run with. Afterwards
the stored passwords and binding keys are read back from the stores and
searched for in every capture: raw, base64, base64url, hex, JSON-escaped
and URL-encoded. API keys: the authority's database holds only their
SHA-256, never the key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import secrets
import sqlite3
import sys
import zipfile
from typing import Any
from urllib.parse import quote

import pytest

from passgeni_core import decode_seed, open_store, parse_store_uri
from tests.reliability._leak_rig import *  # noqa: F403 - the fixture rig
from tests.reliability._leak_rig import CLI, TERRAFORM, Rig


def _cli(rig: Rig, name: str, *args: str) -> dict[str, Any]:
    proc = rig.run(name, [sys.executable, "-c", CLI, *args])
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_cli_provision_and_rotate(rig: Rig) -> None:
    uid = secrets.token_hex(4)
    for uri in (
        f"vault://secret/leaks/cli-{uid}#password",
        f"aws-sm://leaks/cli-{uid}#password",
        f"k8s://leaks/cli-{uid}#password",
    ):
        first = _cli(
            rig, f"provision {uri}", "provision", "--preset", "soc2", "--store", uri, "--json"
        )
        assert first["outcome"] == "created"
        rig.credentials.append(uri)
        second = _cli(
            rig,
            f"rotate {uri}",
            "provision",
            "--preset",
            "soc2",
            "--store",
            uri,
            "--rotate",
            "--json",
        )
        assert second["outcome"] == "rotated" and second["cert_id"] != first["cert_id"]
    rig.flows.append("cli provision --store (vault, aws-sm, k8s) + --rotate")


def test_terraform_store_mode(rig: Rig) -> None:
    uri = f"vault://secret/leaks/tf-{secrets.token_hex(4)}#password"
    query = {"preset": "soc2", "destination": uri, "keeper": "v1", "mode": "ensure"}
    proc = rig.run("terraform", [sys.executable, "-c", TERRAFORM], stdin=json.dumps(query))
    assert json.loads(proc.stdout)["mode"] == "ensure"
    rig.credentials.append(uri)
    rig.flows.append("terraform external (ensure mode)")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_rotation_handler_all_steps(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    from vault_plugin_helper.rotation import RotationConfig, run_step

    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, rig.env[name])
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, rig.env[name])
    sm = rig.moto.boto3_client("secretsmanager")
    iam = rig.moto.boto3_client("iam")
    role = iam.create_role(RoleName=f"rot-{secrets.token_hex(3)}", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    fn = rig.moto.boto3_client("lambda").create_function(
        FunctionName=f"leaks-{secrets.token_hex(3)}",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="h.handler",
        Code={"ZipFile": code.getvalue()},
    )
    name = f"leaks/rot-{secrets.token_hex(4)}"
    arn = sm.create_secret(
        Name=name,
        SecretString=json.dumps({"username": "app", "password": "Initial-" + secrets.token_hex(8)}),
    )["ARN"]
    token = secrets.token_hex(16)
    sm.rotate_secret(
        SecretId=arn,
        ClientRequestToken=token,
        RotationLambdaARN=fn["FunctionArn"],
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    config = RotationConfig(
        preset="soc2", target="none", url=rig.proxy.url, issuer=rig.proxy.url, api_key=rig.api_key
    )
    records = _Records()
    records.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    # As in a fresh Lambda process: nothing else has imported the aws-sm store backend
    # (whose import installs the botocore body redaction) before the handler runs.
    from vault_plugin_helper import _botocore_redaction as redaction

    for logger_name in redaction.BODY_LOGGERS:
        logging.getLogger(logger_name).removeFilter(redaction.REDACTOR)
    try:
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            run_step(
                {"SecretId": arn, "ClientRequestToken": token, "Step": step}, sm=sm, config=config
            )
    finally:
        root.removeHandler(records)
        root.setLevel(old_level)
        redaction.install_redaction()
    assert records.lines, "no log line was captured at DEBUG"
    rig.captures["rotation handler logs"] = "\n".join(records.lines).encode()
    rig.credentials.append(f"aws-sm://{name}#password")
    rig.flows.append("rotation handler (createSecret, setSecret, testSecret, finishSecret)")


PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: A certified credential stored in Vault
      passgeni.compliance.credential:
        preset: soc2
        destination: "{uri}"
      register: stored
    - name: Show what the module returned
      ansible.builtin.debug:
        var: stored
"""


def test_ansible_vvv(rig: Rig) -> None:
    from tests.integration.ansible_collection.conftest import SOURCE, _galaxy, ansible_bin, base_env

    work = rig.home / "ansible-work"
    work.mkdir()
    env = base_env(work, None)
    dist, dest = work / "dist", work / "collections"
    dist.mkdir()
    _galaxy(env, "build", str(SOURCE), "--output-path", str(dist))
    (tarball,) = dist.glob("passgeni-compliance-*.tar.gz")
    _galaxy(env, "install", str(tarball), "-p", str(dest))
    env = base_env(work, dest)
    for name in (
        "PASSGENI_URL",
        "PASSGENI_ISSUER",
        "PASSGENI_API_KEY",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "TMPDIR",
    ):
        env[name] = rig.env[name]
    env["ANSIBLE_HOME"] = str(rig.home / ".ansible")
    env["ANSIBLE_LOCAL_TEMP"] = str(rig.home / ".ansible" / "tmp")
    env["ANSIBLE_KEEP_REMOTE_FILES"] = "1"  # keep module payloads: they are searched too
    uri = f"vault://secret/leaks/ansible-{secrets.token_hex(4)}#password"
    playbook = work / "leaks.yml"
    playbook.write_text(PLAYBOOK.format(uri=uri))
    proc = rig.run(
        "ansible-playbook -vvv",
        [ansible_bin("ansible-playbook"), "-i", "localhost,", str(playbook), "-vvv"],
        env=env,
    )
    assert "changed=1" in proc.stdout
    rig.credentials.append(uri)
    rig.flows.append("ansible-playbook -vvv (passgeni.compliance.credential)")


def _encodings(secret: bytes) -> set[bytes]:
    forms = {
        secret,
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
        secret.hex().upper().encode(),
    }
    with contextlib.suppress(UnicodeDecodeError):
        text = secret.decode("utf-8")
        forms.add(json.dumps(text)[1:-1].encode())
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1].encode())
        forms.add(quote(text, safe="").encode())
        forms.add(repr(text)[1:-1].encode())
    return {f for f in forms if len(f) >= 8}


def test_zz_nothing_leaked(rig: Rig) -> None:
    """Runs after the flows: read every stored secret back and search every capture."""
    assert rig.flows == [
        "cli provision --store (vault, aws-sm, k8s) + --rotate",
        "terraform external (ensure mode)",
        "rotation handler (createSecret, setSecret, testSecret, finishSecret)",
        "ansible-playbook -vvv (passgeni.compliance.credential)",
    ], rig.flows
    secrets_found: dict[str, bytes] = {}
    options = {
        "vault": {"environ": {"VAULT_ADDR": rig.bao.url, "VAULT_TOKEN": rig.bao.token}},
        "aws-sm": {"client": rig.moto.boto3_client()},
        "k8s": {"api_client": rig.kube.api_client()},
    }
    for uri in rig.credentials:
        parsed = parse_store_uri(uri)
        store = open_store(uri, **options[parsed.scheme])
        stored = store.read(parsed)
        assert stored is not None and stored.password and stored.seed, uri
        secrets_found[f"{uri} password"] = stored.password.encode()
        secrets_found[f"{uri} seed"] = stored.seed
        assert (
            decode_seed(base64.urlsafe_b64encode(stored.seed).rstrip(b"=").decode()) == stored.seed
        )
    # The rotated-away passwords too (Vault keeps old versions; they were generated here).
    client = rig.bao.hvac_client()
    for uri in rig.credentials:
        if uri.startswith("vault://"):
            path = uri.removeprefix("vault://secret/").split("#")[0]
            meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")[
                "data"
            ]
            for version in meta["versions"]:
                data = client.secrets.kv.v2.read_secret_version(
                    path=path,
                    mount_point="secret",
                    version=int(version),
                    raise_on_deleted_version=True,
                )["data"]["data"]
                secrets_found[f"{uri} v{version} password"] = data["password"].encode()
                assert list(data) == ["password"], sorted(data)  # the seed is not in the value
            # The seeds of every version are in the proof record's entries (its own versions).
            proof_path = f"passgeni-proof/{path}"
            proof_meta = client.secrets.kv.v2.read_secret_metadata(
                path=proof_path, mount_point="secret"
            )["data"]
            for version in proof_meta["versions"]:
                record = client.secrets.kv.v2.read_secret_version(
                    path=proof_path,
                    mount_point="secret",
                    version=int(version),
                    raise_on_deleted_version=True,
                )["data"]["data"]
                for entry in json.loads(record["password.passgeni-proof"]):
                    secrets_found[f"{uri} proof v{version} {entry['cert_id']} seed"] = (
                        base64.urlsafe_b64decode(entry["seed"] + "==")
                    )
    assert len(secrets_found) >= 2 * len(rig.credentials)

    haystacks = dict(rig.captures)
    haystacks["authority log (DEBUG)"] = rig.authority_log.read_bytes()
    haystacks["requests to the authority"] = rig.proxy.recorded
    files = [p for p in rig.home.rglob("*") if p.is_file()]
    for path in files:
        haystacks[f"file {path.relative_to(rig.home)}"] = path.read_bytes()
    assert haystacks["requests to the authority"].count(b"POST /api/generate-certificate") >= 8
    assert len(haystacks["authority log (DEBUG)"]) > 0

    leaks = []
    for what, secret in secrets_found.items():
        for form in _encodings(secret):
            for where, data in haystacks.items():
                at = data.find(form)
                if at >= 0:
                    line_start = data.rfind(b"\n", 0, at) + 1
                    context = data[line_start : line_start + 80] + b" ... "
                    context += data[max(0, at - 60) : at + len(form) + 40]
                    context = context.replace(form, b"***")
                    leaks.append(f"{what} in {where}: ...{context.decode(errors='replace')}...")
    assert leaks == [], leaks
    print(
        f"searched {len(secrets_found)} secrets x encodings in {len(haystacks)} captures ({len(files)} files)"
    )


def test_zz_api_keys_stored_only_as_hashes(rig: Rig) -> None:
    db = rig.state_dir / "authority.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        everything = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - table names from sqlite_master
                everything.append(repr(row))
    assert rows, "no API key row"
    prefix = rig.api_key.split("_")[1]
    assert (prefix, hashlib.sha256(rig.api_key.encode()).hexdigest()) in rows
    secret_part = rig.api_key.split("_", 2)[2]
    dump = "\n".join(everything)
    assert rig.api_key not in dump and secret_part not in dump
    # Nor in the raw database files (pages, WAL), nor in the authority's log.
    for path in rig.state_dir.rglob("*"):
        if path.is_file():
            assert secret_part.encode() not in path.read_bytes(), path
    assert secret_part.encode() not in rig.authority_log.read_bytes()
