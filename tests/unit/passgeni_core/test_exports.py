"""The curated public API: lazy exports agree with the type-checking imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import passgeni_core


def _type_checking_imports() -> dict[str, set[str]]:
    tree = ast.parse(Path(passgeni_core.__file__).read_text())
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                out.setdefault(f".{imp.module}", set()).update(a.name for a in imp.names)
    return out


def test_lazy_exports_match_the_type_checking_imports() -> None:
    exports = {mod: set(names) for mod, names in passgeni_core._EXPORTS.items()}
    assert exports == _type_checking_imports()


def test_every_public_name_resolves() -> None:
    for name in passgeni_core.__all__:
        assert getattr(passgeni_core, name) is not None, name
    assert "generate" in dir(passgeni_core)


def test_import_is_cheap_until_a_heavy_name_is_used() -> None:
    code = (
        "import sys, passgeni_core\n"
        "from passgeni_core import GenerationParameters\n"
        "assert 'jwt' not in sys.modules and 'requests' not in sys.modules, 'eager'\n"
        "passgeni_core.verify_certificate\n"
        "assert 'jwt' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
