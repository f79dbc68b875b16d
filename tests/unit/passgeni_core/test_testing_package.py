"""``passgeni_core.testing``: public names, and no pytest dependency (a third party's runner may differ)."""

from __future__ import annotations

import subprocess
import sys

import passgeni_core.testing
from passgeni_core.stores import MemoryStore, store_class


def test_public_names() -> None:
    assert set(passgeni_core.testing.__all__) == {
        "BackendConformance",
        "FakeAuthority",
        "IssuedToken",
        "low_s_token",
        "provision_generated",
        "write_both",
    }
    for name in passgeni_core.testing.__all__:
        assert getattr(passgeni_core.testing, name) is not None


def test_the_suite_does_not_import_pytest() -> None:
    code = (
        "import sys\n"
        "from passgeni_core.testing import BackendConformance, FakeAuthority\n"
        "FakeAuthority().client().jwks()\n"
        "assert 'pytest' not in sys.modules, 'the conformance suite imported pytest'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_memory_backend_is_an_installed_entry_point() -> None:
    assert store_class("memory") == MemoryStore.from_uri
