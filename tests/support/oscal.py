"""OSCAL documents checked as an auditor's tooling would: ``trestle validate`` in a fresh
trestle workspace, and the findings of an assessment-results document by control."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

TRESTLE = str(Path(sys.executable).with_name("trestle"))


def validate(
    document: Path, workspace: Path, name: str = "scan"
) -> subprocess.CompletedProcess[str]:
    """``trestle init``, ``trestle import -f FILE -o NAME``, ``trestle validate -a``."""
    workspace.mkdir()
    for argv in (["init"], ["import", "-f", str(document), "-o", name]):
        done = subprocess.run(
            [TRESTLE, *argv], cwd=workspace, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            return done
    return subprocess.run(
        [TRESTLE, "validate", "-a"], cwd=workspace, capture_output=True, text=True, timeout=120
    )


def findings(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (result,) = document["assessment-results"]["results"]
    return {f["target"]["target-id"].removesuffix("_obj"): f for f in result.get("findings", [])}
