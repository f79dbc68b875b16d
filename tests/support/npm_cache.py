"""npm packages for interop tests, installed once per machine into a cache directory.

A fresh machine needs only the npm registry; the install is staged and renamed into
place, so parallel runs never see half a tree. Tests that need Node.js skip only
where Node.js itself is absent (``npm_modules`` answers ``None`` there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

__all__ = ["cache_root", "npm_modules"]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "passgeni-tests"


def npm_modules(name: str, packages: dict[str, str]) -> Path | None:
    """``node_modules`` holding ``packages`` (name -> pinned version) under ``name``;
    ``None`` where Node.js is not installed."""
    if shutil.which("node") is None:
        return None
    npm = shutil.which("npm")
    assert npm is not None, "Node.js is installed without npm"
    tag = "-".join(f"{p.replace('/', '+').lstrip('@')}@{v}" for p, v in sorted(packages.items()))
    target = cache_root() / f"{name}-{tag}"
    marker = target / ".complete"
    if not marker.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{name}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            proc = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                 "--prefix", str(staging), *(f"{p}@{v}" for p, v in packages.items())],
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert proc.returncode == 0, f"npm install {name} failed:\n{proc.stderr[-2000:]}"
            (staging / ".complete").write_text("ok\n")
            with contextlib.suppress(OSError):
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for package, version in packages.items():
        installed = target / "node_modules" / package / "package.json"
        assert json.loads(installed.read_text())["version"] == version
    return target / "node_modules"
