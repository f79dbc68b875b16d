"""``ansible-doc`` renders every plugin of the installed collection, with real content."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import ansible_bin
from tests.support import REPO_ROOT

PLUGINS = [
    ("module", "credential"),
    ("module", "certificate_info"),
    ("module", "certificate"),
    ("lookup", "password"),
]


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS)
def test_ansible_doc_renders(ansible_env: dict[str, str], plugin_type: str, name: str) -> None:
    fqcn = f"passgeni.compliance.{name}"
    proc = subprocess.run(
        [ansible_bin("ansible-doc"), "-t", plugin_type, fqcn],
        capture_output=True,
        text=True,
        env=ansible_env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    text = proc.stdout
    assert fqcn in text
    for section in ("OPTIONS", "EXAMPLES", "RETURN"):
        assert section in text.upper(), f"{section} missing from ansible-doc {fqcn}"


@pytest.mark.parametrize(("plugin_type", "name"), PLUGINS)
def test_ansible_doc_json_is_complete(
    ansible_env: dict[str, str], plugin_type: str, name: str
) -> None:
    fqcn = f"passgeni.compliance.{name}"
    proc = subprocess.run(
        [ansible_bin("ansible-doc"), "-t", plugin_type, "--json", fqcn],
        capture_output=True,
        text=True,
        env=ansible_env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)[fqcn]
    doc = data["doc"]
    assert doc["short_description"]
    assert doc["description"]
    assert data["examples"].strip()
    assert data["return"], "return values must be documented"
    for option, spec in doc["options"].items():
        assert spec.get("description"), f"option {option} of {fqcn} has no description"
    for key, spec in data["return"].items():
        assert spec.get("description"), f"return value {key} of {fqcn} has no description"
    if plugin_type == "module":
        # The shared authority connection options, from the doc fragment.
        assert {"url", "api_key", "timeout"} <= set(doc["options"])
    else:
        envs = {e["name"] for o in ("url", "api_key") for e in doc["options"][o].get("env", [])}
        assert envs == {"PASSGENI_URL", "PASSGENI_API_KEY"}


def test_collection_listed(ansible_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [ansible_bin("ansible-doc"), "-t", "module", "--list", "passgeni.compliance"],
        capture_output=True,
        text=True,
        env=ansible_env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("credential", "certificate_info", "certificate"):
        assert f"passgeni.compliance.{name}" in proc.stdout


def test_example_playbooks_parse(ansible_env: dict[str, str]) -> None:
    """The user-facing example and the test playbooks resolve every module of the collection."""
    repo = REPO_ROOT
    for playbook in [
        repo / "examples" / "ansible" / "playbook.yml",
        *sorted((Path(__file__).parent / "playbooks").glob("*.yml")),
    ]:
        proc = subprocess.run(
            [ansible_bin("ansible-playbook"), "-i", "localhost,", "--syntax-check", str(playbook)],
            capture_output=True,
            text=True,
            env=ansible_env,
            timeout=120,
        )
        assert proc.returncode == 0, f"{playbook}:\n{proc.stdout}\n{proc.stderr}"
