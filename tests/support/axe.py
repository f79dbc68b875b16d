"""axe-core, the accessibility engine, for the browser tests.

Installed from the npm registry on first use into a cache directory (``$PASSGENI_TEST_CACHE``
or ``~/.cache/passgeni-tests``), pinned; injected into a page over DevTools (outside the
page's CSP) and run there. axe-core is MPL-2.0: it is fetched, not vendored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.browser import BrowserPage
from tests.support.process import ServerError

AXE_VERSION = "4.14.1"


def axe_source() -> str:
    """The text of ``axe.min.js`` (npm ``axe-core@AXE_VERSION``), installed if need be."""
    cache = Path(os.environ.get("PASSGENI_TEST_CACHE", Path.home() / ".cache" / "passgeni-tests"))
    prefix = cache / f"axe-core-{AXE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise ServerError("npm not found: it installs axe-core for the accessibility tests")
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not script.is_file():
            raise ServerError(f"npm install axe-core failed: {done.stderr[-2000:]}")
    return script.read_text(encoding="utf-8")


def serious_violations(page: BrowserPage, source: str) -> list[dict[str, Any]]:
    """axe's WCAG 2.x A/AA violations of the current page with impact serious or critical."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source + "\n;true")
    result: list[dict[str, Any]] = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return result
