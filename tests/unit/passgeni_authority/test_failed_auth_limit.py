"""Failed authentication has its own cheap per-IP limit (issue #21, finding 2): past the
budget an address is refused before any database work, unless its key is one the process
already knows to be good; other addresses are not affected; the budget refills."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event

from passgeni_authority import AuthorityService, AuthoritySettings, RateLimits
from passgeni_core import RateLimited, Unauthenticated
from tests.support.authority import FakeClock

ATTACKER, OFFICE = "192.0.2.66", "198.51.100.7"


def _authorize(svc: AuthorityService, key: str | None, ip: str) -> object:
    return asyncio.run(svc.authorize(key, ip=ip, endpoint="GET /api/audit"))


def test_an_address_spraying_keys_is_refused_before_any_database_work(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=tmp_path,
        clock=clock,
        rate_limits=RateLimits(failed_auth_per_ip_per_minute=5),
    )
    with AuthorityService(settings) as svc:
        good = svc.create_api_key("alice").key
        _authorize(svc, good, ATTACKER)  # known good to this process from now on
        fresh = svc.create_api_key("bob").key  # good, but never seen by this process
        for key in (None, "garbage", *[f"pg_aaaaaaaa_{'b' * 43}"] * 3):
            with pytest.raises(Unauthenticated):
                _authorize(svc, key, ATTACKER)
        statements: list[str] = []
        event.listen(svc.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        with pytest.raises(RateLimited) as refused:
            _authorize(svc, f"pg_cccccccc_{'d' * 43}", ATTACKER)
        assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 60
        with pytest.raises(RateLimited):
            _authorize(svc, fresh, ATTACKER)  # not known here yet: the cheap path refuses
        assert statements == [], "a refused address costs no database work"
        # A key this process knows is good still works from that address...
        _authorize(svc, good, ATTACKER)
        # ...other addresses are not affected...
        _authorize(svc, fresh, OFFICE)
        # ...and the budget refills.
        clock.advance(61)
        _authorize(svc, good, ATTACKER)
        with pytest.raises(Unauthenticated):
            _authorize(svc, "garbage", ATTACKER)


def test_the_limit_can_be_turned_off(tmp_path: Path) -> None:
    settings = AuthoritySettings(state_dir=tmp_path, rate_limits=RateLimits.unlimited())
    with AuthorityService(settings) as svc:
        for _ in range(100):
            with pytest.raises(Unauthenticated):
                _authorize(svc, "garbage", ATTACKER)
