"""Fair limits over HTTP (issue #19 item 2), against the served authority: a refused
request costs nothing, the sliding windows have no clock-boundary burst, every answer
under a limit carries the IETF ``RateLimit-Policy`` / ``RateLimit`` fields, public
certificate views are limited per IP, and refusals are recorded aggregated."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support.authority import FakeClock, Server, Tenant, plain_session

_FIELD = re.compile(r'"([a-z-]+)";(\w)=(\d+);(\w)=(\d+)')


def _fields(value: str) -> dict[str, dict[str, int]]:
    """A RateLimit or RateLimit-Policy field as {policy: {param: value}}."""
    out: dict[str, dict[str, int]] = {}
    for item in value.split(","):
        match = _FIELD.fullmatch(item.strip())
        assert match, f"not a structured-field item: {item!r}"
        name, k1, v1, k2, v2 = match.groups()
        out[name] = {k1: int(v1), k2: int(v2)}
    return out


def test_answers_carry_ratelimit_policy_and_ratelimit(authority: Server, make_tenant: Any) -> None:
    t = make_tenant(automation=False)
    r = t.post("/api/generate", {"compliance_standard": "soc2"})
    assert r.status_code == 200, r.text
    policy = _fields(r.headers["RateLimit-Policy"])
    assert policy == {
        "burst": {"q": 5, "w": 5},
        "minute": {"q": 60, "w": 60},
        "generation-ip": {"q": 10, "w": 3600},
    }
    state = _fields(r.headers["RateLimit"])
    assert state["burst"]["r"] == 4 and state["minute"]["r"] == 59
    assert state["generation-ip"]["r"] == 9 and 0 < state["generation-ip"]["t"] <= 3600
    r = t.get("/api/audit")
    assert r.status_code == 200
    state = _fields(r.headers["RateLimit"])
    assert set(state) == {"burst", "minute"}  # no generation attempt: no per-IP policy
    assert state["burst"]["r"] == 3 and state["minute"]["r"] == 58
    # An automation key reports its own budget.
    bulk = make_tenant(automation=True)
    r = bulk.get("/api/audit")
    assert _fields(r.headers["RateLimit-Policy"]) == {
        "key-burst": {"q": 100_000, "w": 60},
        "key-minute": {"q": 100_000, "w": 60},
    }
    # A public view reports the per-IP view limit; JWKS is under no limit.
    cert = bulk.certificate()
    r = plain_session().get(f"{authority.url}/api/certificates/{cert['cert_id']}")
    assert _fields(r.headers["RateLimit-Policy"]) == {"views-ip": {"q": 1200, "w": 60}}
    assert "RateLimit" not in plain_session().get(f"{authority.url}/.well-known/jwks.json").headers


def test_a_429_carries_retry_after_and_the_empty_policy(
    authority: Server, make_tenant: Any
) -> None:
    t = make_tenant(automation=False)
    for _ in range(5):
        assert t.get("/api/audit").status_code == 200
    r = t.get("/api/audit")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert _fields(r.headers["RateLimit"])["burst"]["r"] == 0


def test_a_refused_batch_spends_nothing(authority: Server, make_tenant: Any) -> None:
    """Regression (issue #19): a refused count-11 batch spent the whole hourly
    per-IP budget (and the caller's burst) of every default key behind the IP."""
    t = make_tenant(automation=False)
    neighbour = make_tenant(automation=False)
    neighbour.http.headers["X-Forwarded-For"] = t.ip  # the same office
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 11})
    assert r.status_code == 400
    # Not even the caller's burst was spent: this is its first charged request.
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 6})
    assert r.status_code == 200
    state = _fields(r.headers["RateLimit"])
    assert state["burst"]["r"] == 4 and state["generation-ip"]["r"] == 4
    # Over what is left (4): refused whole, and neither the IP's nor the
    # caller's budget moves.
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 5})
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited") and r.headers["Retry-After"]
    state = _fields(r.headers["RateLimit"])
    assert state["generation-ip"]["r"] == 0  # not enough for this request
    r = neighbour.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 4})
    assert r.status_code == 200, r.text
    assert _fields(r.headers["RateLimit"])["generation-ip"]["r"] == 0
    r = t.get("/api/audit")
    assert _fields(r.headers["RateLimit"])["burst"]["r"] == 3  # only the admitted ones


def test_no_burst_across_the_hour_boundary(authority: Server, make_tenant: Any) -> None:
    """Regression: a clock-hour window let 20 attempts through in 2 s across a boundary."""
    t = make_tenant(automation=False)
    authority.clock.align(3600)
    authority.clock.advance(3600 - 12)  # 12 s before the next hour
    for i in range(10):
        assert t.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 200, i
        authority.clock.advance(1.0)
    authority.clock.advance(3)  # 1 s after the boundary
    codes = []
    for _ in range(5):
        codes.append(t.post("/api/generate", {"compliance_standard": "soc2"}).status_code)
        authority.clock.advance(1.0)
    assert codes == [429] * 5


def test_refused_requests_are_aggregated_into_few_events(
    authority: Server, make_tenant: Any
) -> None:
    t = make_tenant(automation=False)
    for _ in range(5):
        t.get("/api/audit")
    for _ in range(40):
        assert t.get("/api/audit").status_code == 429
    with sqlite3.connect(authority.db_path) as db:
        rows = db.execute(
            "SELECT detail FROM usage_events WHERE kind = 'rate_limited' AND user_id = ?",
            (t.user,),
        ).fetchall()
    assert len(rows) == 1 and '"count":1' in rows[0][0]
    authority.clock.advance(61)  # the next refusal after the period writes the rest
    for _ in range(6):
        t.get("/api/audit")
    with sqlite3.connect(authority.db_path) as db:
        details = [
            r[0]
            for r in db.execute(
                "SELECT detail FROM usage_events WHERE kind = 'rate_limited' AND user_id = ?",
                (t.user,),
            )
        ]
    assert len(details) == 2 and '"count":40' in details[1], details


def test_failed_authentication_is_recorded_without_the_key(
    authority: Server, make_tenant: Any
) -> None:
    t = make_tenant()
    authority.service.revoke_api_key(t.key)
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    t.http.headers["X-Forwarded-For"] = ip
    for _ in range(3):
        assert t.get("/api/audit").status_code == 401
    secret = t.key.split("_", 2)[2]
    with sqlite3.connect(authority.db_path) as db:
        rows = db.execute(
            "SELECT ip, detail FROM usage_events WHERE kind = 'auth_failed' AND ip = ?", (ip,)
        ).fetchall()
        dump = "\n".join(str(r) for r in db.execute("SELECT * FROM usage_events"))
    assert len(rows) == 1
    assert t.key.split("_")[1] in rows[0][1] and '"count":1' in rows[0][1]
    assert secret not in dump


@pytest.fixture(scope="module")
def view_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state_dir = tmp_path_factory.mktemp("views")
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_strict=False,
        rate_limits=RateLimits(views_per_ip_per_minute=6),
        trusted_proxies=("127.0.0.1",),
    )
    with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
        yield Server(embedded=embedded, clock=clock, state_dir=Path(state_dir))


def test_public_certificate_views_are_limited_per_ip(view_limited: Server) -> None:
    created = view_limited.service.create_api_key("viewer", rate_limit=10_000)
    owner = Tenant(server=view_limited, user="viewer", key=created.key, ip="10.9.9.9")
    cert = owner.certificate()
    http = plain_session()
    http.headers["X-Forwarded-For"] = "203.0.113.5"
    url = f"{view_limited.url}/cert/{cert['cert_id']}"
    codes = [http.get(url).status_code for _ in range(4)]
    # Unknown ids count too (enumeration costs what viewing does).
    codes += [http.get(f"{view_limited.url}/api/certificates/pg_{'a' * 24}").status_code]
    codes += [http.get(f"{view_limited.url}/api/certificates/{cert['cert_id']}").status_code]
    assert codes == [200] * 4 + [404, 200]
    r = http.get(url)
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited")
    assert r.headers["Retry-After"] == "10"  # 6 per minute: one every 10 s
    # Another address is not affected; the view limit refills.
    other = plain_session()
    other.headers["X-Forwarded-For"] = "203.0.113.6"
    assert other.get(url).status_code == 200
    view_limited.clock.advance(10)
    assert http.get(url).status_code == 200
