"""Hostile module arguments: every module answers one JSON object, never a traceback.

Each example runs the installed module file as a real process, exactly the way
Ansible executes a module on a host (an arguments file holding
``{"ANSIBLE_MODULE_ARGS": {...}}``), with the authority pointed at a closed port
so nothing can be certified or written by accident. Bounded example counts
keep this under a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

DEAD_URL = "http://127.0.0.1:9"

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.sampled_from(["", " ", "\u202e", "../../etc/passwd", "vault://", "k8s://A/B", "x" * 5000]),
)
hostile_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)

MODULES: dict[str, list[str]] = {
    "credential": [
        "preset", "length", "exclude", "exclude_lookalikes", "special_chars", "destination",
        "label", "state", "force", "rotate_before", "return_password",
    ],
    "certificate_info": ["token", "cert_url", "cert_id", "require_valid", "jwks"],
    "certificate": ["cert_id", "state", "reason"],
}  # fmt: skip


def _run(collections: Path, module: str, args: dict[str, Any], tmp: Path) -> dict[str, Any]:
    path = collections / "ansible_collections/passgeni/compliance/plugins/modules" / f"{module}.py"
    args_file = tmp / "args.json"
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": True}}
    args_file.write_text(json.dumps(payload, allow_nan=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "VAULT_", "AWS_"))}
    env.update(PYTHONPATH=str(collections), PASSGENI_URL=DEAD_URL, PASSGENI_CONFIG=os.devnull)
    proc = subprocess.run(
        [sys.executable, str(path), str(args_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "Traceback" not in proc.stdout and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-2000:])
    result = json.loads(proc.stdout)  # exactly one JSON object, nothing else
    assert isinstance(result, dict)
    if result.get("failed"):
        assert isinstance(result.get("msg"), str) and result["msg"]
        assert "\n" not in result["msg"].strip() or "missing required" in result["msg"]
    return result


@pytest.mark.parametrize("module", sorted(MODULES))
def test_hostile_arguments_fail_cleanly(
    module: str, installed_collection: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp(f"hostile-{module}")

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(
        known=st.dictionaries(st.sampled_from(MODULES[module]), hostile_value, max_size=6),
        unknown=st.dictionaries(st.text(min_size=1, max_size=8), hostile_value, max_size=2),
    )
    def check(known: dict[str, Any], unknown: dict[str, Any]) -> None:
        _run(installed_collection, module, {**unknown, **known}, tmp)

    check()


def test_known_bad_inputs_name_the_problem(installed_collection: Path, tmp_path: Path) -> None:
    cases = [
        ({"preset": "soc2", "length": 10**9}, "length_out_of_range"),
        ({"preset": "no-such-preset"}, "unknown_preset"),
        ({"preset": "soc2", "exclude": "\u00e9"}, "invalid_parameters"),
        ({"preset": "soc2", "destination": "vault://"}, "invalid_store_uri"),
        ({"preset": "hipaa", "length": 4}, "preset_not_met"),
    ]
    for args, code in cases:
        result = _run(installed_collection, "credential", args, tmp_path)
        assert result.get("failed") is True, (args, result)
        assert result.get("error_code") == code, (args, result)
