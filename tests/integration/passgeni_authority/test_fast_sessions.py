"""The fast path for opening sessions (``POST /api/generate``), over real HTTP.

An automation key admitted from this process's rate-limit leases, asking for
a request already stored, is answered without waiting for any write: its
``api_access`` event is queued and written by the next group commit. The
answers and the rules must be those of the ordinary path: every access is
recorded, every session redeems exactly once, a revoked key is refused at
once and a rate limit is never bypassed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.authority import Server

GENERATE = "POST /api/generate"


def _generate_events(server: Server, user: str) -> list[dict[str, Any]]:
    """The ``api_access`` events of ``user`` for ``POST /api/generate`` (exactly)."""
    with sqlite3.connect(server.db_path) as db:
        rows = db.execute(
            "SELECT detail FROM usage_events WHERE kind = 'api_access' AND user_id = ?", (user,)
        ).fetchall()
    details = [json.loads(row[0]) for row in rows]
    return [d for d in details if d["endpoint"] == GENERATE]


def _poll(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@pytest.fixture
def fast_calls(authority: Server, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The usage events the fast path queued (``UsageEvents.record_later``) during the test."""
    service = authority.service
    original = service.events.record_later
    calls: list[dict[str, Any]] = []

    def spy(row: dict[str, Any]) -> None:
        calls.append(row)
        original(row)

    monkeypatch.setattr(service.events, "record_later", spy)
    return calls


def test_fast_sessions_are_recorded_and_redeem_once(
    authority: Server, make_tenant: Any, fast_calls: list[dict[str, Any]]
) -> None:
    t = make_tenant()
    sessions = []
    for i in range(40):
        r = t.post("/api/generate", {"compliance_standard": "soc2"})
        assert r.status_code == 200, (i, r.text)
        sessions.append(r.json()["generation_session_id"])
    assert len(set(sessions)) == 40
    # The first request leases the key's tokens and stores the request; every
    # later one is answered from memory with its event queued.
    mine = [row for row in fast_calls if row["user_id"] == t.user]
    assert len(mine) == 39
    assert all(json.loads(row["detail"])["endpoint"] == GENERATE for row in mine)
    # Queued events are written by the next group commit, without any other traffic.
    assert _poll(lambda: len(_generate_events(authority, t.user)) >= 40), _generate_events(
        authority, t.user
    )
    events = _generate_events(authority, t.user)
    assert len(events) == 40
    assert {e["key"] for e in events} == {t.key.split("_")[1]}
    # Stateless sessions answered from memory are real: each redeems exactly once.
    for sid in sessions:
        r = t.post("/api/generate-certificate", {"generation_session_id": sid})
        assert r.status_code == 201, r.text
    for sid in sessions:
        r = t.post("/api/generate-certificate", {"generation_session_id": sid, "label": "again"})
        assert (r.status_code, r.json()["code"]) == (409, "session_already_used"), r.text
    audit = t.get("/api/audit", params={"page_size": 100}).json()
    assert audit["total"] == 40
    # Redeeming recorded its own events; the generate count is unchanged.
    assert len(_generate_events(authority, t.user)) == 40


def test_revocation_applies_at_once_on_the_fast_path(
    authority: Server, make_tenant: Any, fast_calls: list[dict[str, Any]]
) -> None:
    t = make_tenant()
    for _ in range(3):
        assert t.post("/api/generate", {"compliance_standard": "soc2"}).status_code == 200
    assert any(row["user_id"] == t.user for row in fast_calls), "the fast path was not taken"
    queued = len(fast_calls)
    # The process still holds leased tokens for this key: only the key check stands between.
    authority.service.revoke_api_key(t.key.split("_")[1])
    r = t.post("/api/generate", {"compliance_standard": "soc2"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
    assert "generation_session_id" not in r.text
    assert len(fast_calls) == queued
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 2})
    assert r.status_code == 401, r.text


def test_a_tiny_limit_is_never_bypassed(authority: Server, make_tenant: Any) -> None:
    t = make_tenant(automation=False)
    key = authority.service.create_api_key(t.user, rate_limit=2)
    t.http.headers["Authorization"] = f"Bearer {key.key}"
    authority.clock.align(60)
    codes = [t.post("/api/generate", {"compliance_standard": "soc2"}).status_code for _ in range(2)]
    assert codes == [200, 200]
    r = t.post("/api/generate", {"compliance_standard": "soc2"})
    assert (r.status_code, r.json()["code"]) == (429, "rate_limited"), r.text
    assert int(r.headers["Retry-After"]) >= 1
    r = t.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 1})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_a_leased_limit_is_never_bypassed(
    authority: Server, make_tenant: Any, fast_calls: list[dict[str, Any]]
) -> None:
    # 480 per minute is the smallest automation limit the process leases
    # blocks for (8 tokens per second x LEASE_SECONDS = 2 tokens), so a large
    # share of these requests (every other one) is admitted from memory, on
    # the fast path.
    t = make_tenant(automation=False)
    key = authority.service.create_api_key(t.user, rate_limit=480)
    t.http.headers["Authorization"] = f"Bearer {key.key}"
    authority.clock.align(60)
    admitted = 0
    for _ in range(480):
        r = t.post("/api/generate", {"compliance_standard": "soc2"})
        if r.status_code != 200:
            break
        admitted += 1
    assert admitted == 480, r.text
    assert sum(row["user_id"] == t.user for row in fast_calls) >= 160
    for _ in range(3):
        r = t.post("/api/generate", {"compliance_standard": "soc2"})
        assert (r.status_code, r.json()["code"]) == (429, "rate_limited"), r.text
        assert int(r.headers["Retry-After"]) >= 1
