"""Lazy exports (PEP 562) for the package and its subpackages.

A package lists its public names by module; a name's module (and what it
imports: pyjwt, cryptography, requests) loads on first use, so importing a
package costs almost nothing. Short-lived processes such as the Terraform
external program depend on that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]], extra: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` exporting ``exports``.

    ``exports`` maps a module (relative to ``package``, e.g. ``"._params"``)
    to the names it provides; ``extra`` are names defined in the package itself.
    """
    module_of = {name: mod for mod, names in exports.items() for name in names}
    public = sorted([*module_of, *extra])
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public})

    return __getattr__, __dir__, public
