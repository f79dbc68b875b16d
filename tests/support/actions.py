"""Runs a composite GitHub Action's steps as a runner does, for tests.

``action.yml`` is parsed; its inputs get their defaults (a missing required one is an
error); every input is in the environment as ``INPUT_<NAME>`` (upper case, as the runner
sets them); each step's ``env`` and the action's output ``value`` are evaluated for the
expressions the runner would (``${{ inputs.X }}``, ``${{ github.action_path }}``,
``${{ steps.ID.outputs.X }}``; anything else is refused, so nothing passes untested); each
``run`` step is executed with ``bash --noprofile --norc -eo pipefail FILE`` (the runner's
``shell: bash``) with a fresh ``GITHUB_OUTPUT`` file, read back in both of its syntaxes
(``name=value`` and ``name<<DELIMITER``). Workflow commands on stdout (``::add-mask::``,
``::error``) are collected. Only steps with ``run`` are supported.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ActionRun", "run_composite_action"]

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class ActionRun:
    """What a run of the action left: its outputs, each step's logs and exit code."""

    outputs: dict[str, str]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    masks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    output_files: list[str] = field(default_factory=list)
    summary: str = ""


def _read_outputs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                value.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value)
        else:
            name, _, value_text = line.partition("=")
            out[name] = value_text
    return out


def _evaluate(text: str, context: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if m := re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", expr):
            return str(context["inputs"][m.group(1)])
        if expr == "github.action_path":
            return str(context["action_path"])
        if m := re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expr):
            return context["steps"].get(m.group(1), {}).get(m.group(2), "")
        raise ValueError(f"the test runner does not evaluate ${{{{ {expr} }}}}")

    return _EXPR.sub(one, text)


def run_composite_action(
    action_dir: Path, inputs: dict[str, str], *, env: dict[str, str], workdir: Path
) -> ActionRun:
    """Run every step of the composite action in ``action_dir``; stop at the first failure."""
    spec = yaml.safe_load((action_dir / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite", "not a composite action"
    declared = spec.get("inputs", {})
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs the action does not declare: {sorted(unknown)}"
    values: dict[str, str] = {}
    for name, meta in declared.items():
        if name in inputs:
            values[name] = inputs[name]
        elif "default" in meta:
            values[name] = str(meta["default"])
        elif meta.get("required"):
            raise ValueError(f"input required and not supplied: {name}")
        else:
            values[name] = ""
    context: dict[str, Any] = {"inputs": values, "action_path": action_dir, "steps": {}}
    base = {**env, **{f"INPUT_{k.upper()}": v for k, v in values.items()}}
    base["GITHUB_ACTION_PATH"] = str(action_dir)
    summary = workdir / "step-summary.md"
    summary.touch()
    base["GITHUB_STEP_SUMMARY"] = str(summary)
    base["RUNNER_TEMP"] = str(workdir)
    run = ActionRun(outputs={}, returncode=0)
    for index, step in enumerate(spec["runs"]["steps"]):
        assert "run" in step and step.get("shell") == "bash", f"step {index}: only bash run steps"
        assert "if" not in step, f"step {index}: conditions are not evaluated here"
        step_env = {
            **base,
            **{k: _evaluate(str(v), context) for k, v in step.get("env", {}).items()},
        }
        output_file = workdir / f"github-output-{index}"
        output_file.write_text("")
        step_env["GITHUB_OUTPUT"] = str(output_file)
        with tempfile.NamedTemporaryFile("w", suffix=".sh", dir=workdir, delete=False) as script:
            script.write(str(step["run"]))
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", script.name],
            env=step_env, cwd=workdir, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        os.unlink(script.name)
        run.stdout += done.stdout
        run.stderr += done.stderr
        for line in done.stdout.splitlines():
            if line.startswith("::add-mask::"):
                run.masks.append(line.removeprefix("::add-mask::"))
            elif line.startswith("::error"):
                run.errors.append(line)
        written = output_file.read_text()
        run.output_files.append(written)
        if "id" in step:
            context["steps"][step["id"]] = _read_outputs(written)
            run.step_outputs[step["id"]] = context["steps"][step["id"]]
        if done.returncode != 0:
            run.returncode = done.returncode
            break
    run.summary = summary.read_text()
    run.outputs = {
        name: _evaluate(str(meta["value"]), context)
        for name, meta in spec.get("outputs", {}).items()
    }
    return run
