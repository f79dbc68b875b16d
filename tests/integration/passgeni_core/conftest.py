"""Fixtures of the core's integration tests: the scripted authority (``fake``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_authority import ScriptedAuthority


@pytest.fixture
def fake() -> Iterator[ScriptedAuthority]:
    with ScriptedAuthority() as server:
        yield server
