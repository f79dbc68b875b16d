"""The test layout holds (docs/testing.md): every test is in a tier that ``make test`` runs,
the harness in ``tests/support`` is plain Python, bench imports only the harness, tests never
import bench, and the unit tier imports nothing that brings server fixtures."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import REPO_ROOT

ROOT = REPO_ROOT
TESTS = ROOT / "tests"
TIERS = ("unit", "integration", "reliability")


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_every_test_module_is_in_a_tier() -> None:
    outside = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in TIERS
    ]
    assert outside == [], f"not run by make unit/integration/reliability: {outside}"


def test_the_support_package_is_plain_python() -> None:
    for path in (TESTS / "support").glob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] not in ("pytest", "_pytest", "bench"), (path.name, name)
            if name.startswith("tests"):
                assert name.startswith("tests.support"), (path.name, name)


def test_bench_imports_only_the_support_package_from_tests() -> None:
    for path in (ROOT / "bench").glob("*.py"):
        for name in _imports(path):
            if name == "tests" or name.startswith("tests."):
                assert name.startswith("tests.support"), (path.name, name)


def test_tests_never_import_bench() -> None:
    bench_modules = {path.stem for path in (ROOT / "bench").glob("*.py")}
    for path in TESTS.rglob("*.py"):
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8")
        assert '/ "bench"' not in text, path  # sys.path.insert(0, str(ROOT / "bench"))
        for name in _imports(path):
            top = name.split(".")[0]
            assert top != "bench" and top not in bench_modules, (path, name)


def test_unit_tests_import_no_server_fixtures() -> None:
    for path in (TESTS / "unit").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith(("tests.integration", "tests.reliability")), (path, name)
            assert name != "tests.server_fixtures", (path, name)


def test_the_repository_root_comes_from_the_harness() -> None:
    """A root computed from a file's depth (``parents[N]``) silently points elsewhere once
    the file moves (a subprocess then runs the installed code, not this tree's):
    tests take ``tests.support.REPO_ROOT``."""
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.relative_to(TESTS).parts[0] != "support"
        and ".parents[" in path.read_text(encoding="utf-8")
        and path != Path(__file__)
    ]
    assert offenders == []


def test_every_tests_import_names_a_module_that_exists() -> None:
    """A test importing a harness module that moved fails only when its tier is collected
    (minutes into ``make test``); this finds it in the unit tier, for every tier."""
    import importlib.util

    missing = set()
    for path in TESTS.rglob("*.py"):
        for name in _imports(path):
            if name.split(".")[0] == "tests" and importlib.util.find_spec(name) is None:
                missing.add(f"{path.relative_to(TESTS)}: {name}")
    assert sorted(missing) == []
