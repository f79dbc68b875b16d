"""Fixtures for the authority tests: one real uvicorn server per session, a
controllable clock (``tests.support.authority``), and per-test tenants (fresh user, key and client IP each,
so rate limits and isolation never leak between tests).

The server runs the real app under real uvicorn over real HTTP; it is in
this process (``EmbeddedAuthority`` with test settings) only so tests can
move its clock and read its database.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support.authority import FakeClock, Server, Tenant

_ips = itertools.count(1)


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real app under uvicorn on a free port, SQLite store, default (served) limits."""
    state_dir = tmp_path_factory.mktemp("authority")
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_strict=True,
        # Not a FIPS-mode host, whatever the machine running the tests is.
        fips_flag_path=state_dir / "no-fips-flag",
        rate_limits=RateLimits(),
        trusted_proxies=("127.0.0.1",),
    )
    with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
        yield Server(embedded=embedded, clock=clock, state_dir=state_dir)


@pytest.fixture
def make_tenant(authority: Server) -> Any:
    """``make_tenant(automation=True, team=None)``: a fresh user, key and IP.

    Automation tenants carry a high per-key limit (and skip the per-IP
    generation limit), so tests that are not about limits never trip them.
    """

    def make(
        *, automation: bool = True, team: str | None = None, user: str | None = None
    ) -> Tenant:
        user = user or f"u-{uuid.uuid4().hex[:10]}"
        created = authority.service.create_api_key(
            user, team=team, rate_limit=100_000 if automation else None
        )
        n = next(_ips)
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        return Tenant(server=authority, user=user, key=created.key, ip=ip, team=team)

    return make
