"""One exception tree: every error of the core is found by its code, whatever is imported."""

from __future__ import annotations

import json
import subprocess
import sys

# Runs in a fresh interpreter: what ``error_for_code`` finds must not depend on
# which modules happen to be imported already.
_WALK = """
import importlib, json, pkgutil, sys
import passgeni_core as core
from passgeni_core import PassgeniError, error_for_code

def tree():
    out, todo = [], [PassgeniError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out

before = tree()
found = {cls.code: error_for_code(cls.code) is cls for cls in before}
codes = [cls.code for cls in before]
for info in pkgutil.walk_packages(core.__path__, core.__name__ + "."):
    if not info.name.endswith(".__main__"):  # that one runs the CLI
        importlib.import_module(info.name)
after = tree()
print(json.dumps({
    "codes": codes,
    "found": found,
    "modules": sorted({cls.__module__ for cls in before}),
    "tree": PassgeniError.__module__,
    "added": sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in set(after) - set(before)),
}))
"""


def test_every_error_is_in_the_tree_with_a_unique_code() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _WALK], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    data = json.loads(out)
    codes = data["codes"]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert all(data["found"].values()), [c for c, ok in data["found"].items() if not ok]
    # Every class lives in the one tree module, so importing the rest adds none.
    assert data["modules"] == [data["tree"]]
    assert data["added"] == []
    # Rotation's errors used to live beside the rotation code.
    for code in ("target_error", "target_unavailable", "target_login_failed", "store_error"):
        assert code in codes
