"""No module over ~500 lines and no class over ~300 (issue #15): past that a file or a class
holds more than one responsibility, and reviewing a change means reading what it does not touch.
Alembic migrations are generated history, not design, so they are left out."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import REPO_ROOT

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
CHECKED = (
    "passgeni_core",
    "passgeni_authority",
    "ansible_collection",
    "vault_plugin_helper",
    "k8s_operator_hooks",
    "terraform_external",
    "tests",
    "bench",
)
SKIPPED_DIRS = {"migrations", ".venv", "__pycache__"}


def _python_files() -> Iterator[Path]:
    for top in CHECKED:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            if not SKIPPED_DIRS.intersection(path.relative_to(REPO_ROOT).parts):
                yield path


def _oversized(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(REPO_ROOT)
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        yield f"{where}: module of {lines} lines (max {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            size = node.end_lineno - node.lineno + 1
            if size > MAX_CLASS_LINES:
                yield f"{where}:{node.lineno}: class {node.name} of {size} lines (max {MAX_CLASS_LINES})"


def test_the_walk_finds_every_package() -> None:
    """A renamed top-level folder would make the size check below pass on nothing."""
    found = {path.relative_to(REPO_ROOT).parts[0] for path in _python_files()}
    assert found == set(CHECKED)


def test_no_module_or_class_is_oversized() -> None:
    offenders = [line for path in _python_files() for line in _oversized(path)]
    assert offenders == [], "split by responsibility:\n" + "\n".join(offenders)
