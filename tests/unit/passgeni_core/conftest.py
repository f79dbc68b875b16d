"""Fixtures of the judge's tests: a fake authority (real ES256 tokens, no server) and a client
that talks to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from passgeni_core.client import AuthorityClient
from passgeni_core.testing import FakeAuthority


@pytest.fixture
def authority() -> FakeAuthority:
    return FakeAuthority()


@pytest.fixture
def client(authority: FakeAuthority) -> Iterator[AuthorityClient]:
    with authority.client() as c:
        yield c
