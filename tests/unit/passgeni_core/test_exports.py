"""The curated public API: lazy exports agree with the type-checking imports."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import passgeni_core

#: Every package with a curated, lazily exported ``__all__``.
PACKAGES = [
    "passgeni_core",
    "passgeni_core.model",
    "passgeni_core.crypto",
    "passgeni_core.client",
    "passgeni_core.stores",
    "passgeni_core.workflows",
    "passgeni_core.audit",
]


def _type_checking_imports(package: ModuleType) -> dict[str, set[str]]:
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                module = "." * imp.level + (imp.module or "")
                out.setdefault(module, set()).update(a.name for a in imp.names)
    return out


@pytest.mark.parametrize("name", PACKAGES)
def test_lazy_exports_match_the_type_checking_imports(name: str) -> None:
    package = importlib.import_module(name)
    declared = _type_checking_imports(package)
    assert set(package.__all__) - {"__version__"} == set().union(*declared.values())
    for module, names in declared.items():
        source = importlib.import_module(module, name)
        for attr in names:
            # The lazy look-up finds the very object the type checker sees.
            assert getattr(package, attr) is getattr(source, attr), (name, attr)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves(name: str) -> None:
    package = importlib.import_module(name)
    for attr in package.__all__:
        assert getattr(package, attr) is not None, attr
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def test_the_top_level_keeps_its_names() -> None:
    assert "generate" in dir(passgeni_core)
    assert passgeni_core.StoreURI is passgeni_core.stores.StoreURI
    assert passgeni_core.assess is passgeni_core.workflows.assess


def test_import_is_cheap_until_a_heavy_name_is_used() -> None:
    code = (
        "import sys, passgeni_core\n"
        "from passgeni_core import GenerationParameters\n"
        "assert 'jwt' not in sys.modules and 'requests' not in sys.modules, 'eager'\n"
        "passgeni_core.verify_certificate\n"
        "assert 'jwt' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_subpackages_are_cheap_to_import() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in PACKAGES)
        + "from passgeni_core.stores import parse_store_uri\n"
        "parse_store_uri('vault://secret/app#password')\n"
        "heavy = {'jwt', 'requests', 'cryptography', 'hvac', 'boto3'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
