"""The composite GitHub Action (``.github/actions/provision``) run as a runner would
(``tests.support.actions``: action.yml parsed, inputs as ``INPUT_*``, each ``run`` step
under bash, outputs through ``GITHUB_OUTPUT``) against real OpenBao and a served authority:
it provisions a certified credential and outputs its certificate, never the password."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from passgeni_core.crypto import verify_certificate
from tests.support.actions import run_composite_action
from tests.support.authority import Live, live_authority
from tests.support.process import REPO_ROOT
from tests.support.proofs import vault_proof

ROOT = REPO_ROOT
ACTION = ROOT / ".github" / "actions" / "provision"
EXAMPLE = ROOT / "examples" / "github-actions" / "provision.yml"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("action-authority")) as authority:
        yield authority


@pytest.fixture
def runner_env(openbao: Any, tmp_path: Path) -> dict[str, str]:
    """A runner's job environment: the store's own variables, no PassGeni configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "VAULT_"))}
    (tmp_path / "home").mkdir()
    env.update(
        HOME=str(tmp_path / "home"),
        VAULT_ADDR=openbao.url,
        VAULT_TOKEN=openbao.token,
        GITHUB_ACTIONS="true",
    )
    return env


def _inputs(live: Live, store: str, **extra: str) -> dict[str, str]:
    return {
        "store": store,
        "preset": "soc2",
        "authority-url": live.url,
        "api-key": live.api_key,
        "python": sys.executable,
        "install": "none",
        **extra,
    }


def _stored(openbao: Any, path: str) -> dict[str, Any]:
    import hvac

    kv = hvac.Client(url=openbao.url, token=openbao.token).secrets.kv.v2
    secret = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
    meta = kv.read_secret_metadata(path=path, mount_point="secret")
    return {"data": secret["data"]["data"], "meta": meta["data"]["custom_metadata"] or {}}


def test_the_action_provisions_a_certified_credential_and_outputs_only_references(
    live: Live, openbao: Any, runner_env: dict[str, str], tmp_path: Path
) -> None:
    path = f"action-{secrets.token_hex(4)}/db"
    store = f"vault://secret/{path}#password"
    run = run_composite_action(
        ACTION, _inputs(live, store, label="ci db"), env=runner_env, workdir=tmp_path
    )
    assert run.returncode == 0, run.stderr
    cert_id, cert_url = run.outputs["cert_id"], run.outputs["cert_url"]
    assert cert_id.startswith("pg_") and cert_url == f"{live.url}/cert/{cert_id}"
    assert run.outputs["compliance_standard"] == "SOC2"
    assert run.outputs["outcome"] == "created" and run.outputs["store_version"] == "1"
    assert run.outputs["expires_at"].endswith("Z")

    # In OpenBao: the password, and the certificate's references beside it.
    stored = _stored(openbao, path)
    password = stored["data"]["password"]
    assert len(password) >= 16
    assert cert_id in " ".join(str(v) for v in stored["meta"].values())
    with live.client() as client:
        record = client.get_certificate(cert_id)
        cert = verify_certificate(record.token, client.jwks(), issuer=live.embedded.issuer)
    assert cert.claims.target is not None and cert.claims.target.path == f"secret/{path}#password"
    assert cert.claims.label == "ci db"

    # Never the password (nor its seed) in the log, the outputs or the summary; the key masked.
    seen = "\n".join(
        [run.stdout, run.stderr, run.summary, *run.output_files, *run.outputs.values()]
    )
    assert set(stored["data"]) == {"password"}
    seed = vault_proof(openbao.hvac_client(), path)["seed"]
    assert password not in seen and seed not in seen
    assert run.masks == [live.api_key]
    assert cert_url in run.summary and cert_url in run.stdout

    # Run again: already covered, nothing changes; with rotate, a new credential and certificate.
    again = run_composite_action(ACTION, _inputs(live, store), env=runner_env, workdir=tmp_path)
    assert again.returncode == 0 and again.outputs["outcome"] == "unchanged"
    assert again.outputs["cert_id"] == cert_id
    rotated = run_composite_action(
        ACTION, _inputs(live, store, rotate="true"), env=runner_env, workdir=tmp_path
    )
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.outputs["outcome"] == "rotated" and rotated.outputs["cert_id"] != cert_id
    assert _stored(openbao, path)["data"]["password"] != password
    with live.client() as client:
        assert client.get_certificate(cert_id).status == "revoked"


def test_the_action_fails_with_a_reason_and_no_outputs(
    live: Live, runner_env: dict[str, str], tmp_path: Path
) -> None:
    store = f"vault://secret/action-{secrets.token_hex(4)}/db#password"
    run = run_composite_action(
        ACTION, _inputs(live, store, preset="no-such-preset"), env=runner_env, workdir=tmp_path
    )
    assert run.returncode == 2
    assert "unknown_preset" in run.stderr and "Traceback" not in run.stderr
    assert run.errors and "provision failed (exit 2)" in run.errors[0]
    assert run.outputs["cert_id"] == "" and run.outputs["cert_url"] == ""

    wrong_key = run_composite_action(
        ACTION,
        _inputs(live, store, **{"api-key": "pgk_nope_nope"}),
        env=runner_env,
        workdir=tmp_path,
    )
    assert wrong_key.returncode != 0 and "unauthenticated" in wrong_key.stderr
    assert wrong_key.outputs["cert_id"] == ""
    bad_rotate = run_composite_action(
        ACTION, _inputs(live, store, rotate="yes"), env=runner_env, workdir=tmp_path
    )
    assert bad_rotate.returncode == 2 and "rotate must be" in bad_rotate.stdout

    with pytest.raises(ValueError, match="input required and not supplied: store"):
        run_composite_action(
            ACTION, {k: v for k, v in _inputs(live, store).items() if k != "store"},
            env=runner_env, workdir=tmp_path,
        )  # fmt: skip


def test_the_default_install_puts_this_checkout_into_a_fresh_python(
    live: Live, openbao: Any, runner_env: dict[str, str], tmp_path: Path
) -> None:
    """``install: self`` (the default), as on a runner whose Python has no PassGeni: the
    action pip-installs its own checkout with the store extras, then provisions with it."""
    import subprocess

    venv = tmp_path / "runner-python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    path = f"action-{secrets.token_hex(4)}/self"
    inputs = {**_inputs(live, f"vault://secret/{path}#password"), "python": python}
    del inputs["install"]  # the default
    run = run_composite_action(ACTION, inputs, env=runner_env, workdir=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.outputs["cert_id"].startswith("pg_")
    # The runner's Python now has this checkout's PassGeni, not the test environment's.
    where = subprocess.run(
        [python, "-c", "import passgeni_core, sys; print(passgeni_core.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert str(venv) in where, where
    stored = _stored(openbao, path)
    assert stored["meta"]["passgeni-cert-id"] == run.outputs["cert_id"]
    assert stored["data"]["password"] not in run.stdout + run.stderr


def test_the_action_and_its_example_workflow_are_well_formed() -> None:
    spec = yaml.safe_load((ACTION / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite"
    assert set(spec["outputs"]) >= {"cert_id", "cert_url"}
    for step in spec["runs"]["steps"]:
        # No expression inside a script (injection): inputs reach the scripts through env.
        assert "${{" not in step["run"], step["name"]
        assert (ACTION / step["run"].split('"$ACTION_PATH/', 1)[1].rstrip('"')).exists()
    workflow = yaml.safe_load(EXAMPLE.read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = [
        s
        for s in steps
        if str(s.get("uses", "")).endswith("/.github/actions/provision")
        or s.get("uses") == "./.github/actions/provision"
    ]
    assert uses, "the example workflow uses the action"
    step = uses[0]
    assert set(step["with"]) <= set(spec["inputs"])
    required = {name for name, meta in spec["inputs"].items() if meta.get("required")}
    assert required <= set(step["with"])
    assert "secrets." in step["with"]["api-key"]
