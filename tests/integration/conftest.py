"""The integration tier: the real-server fixtures (``tests/server_fixtures.py``)."""

from __future__ import annotations

from tests.server_fixtures import chromium, kube_emulator, moto_server, openbao, postgres

__all__ = ["chromium", "kube_emulator", "moto_server", "openbao", "postgres"]
