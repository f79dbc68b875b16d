"""Rate-limit leases (``_ratelimit``) against a real SQLite database shared by
two "processes": two SQLAlchemy connections, each with its own ``Leases``.

The rule under test: a process admits from memory only tokens the database
already counted, so however the requests are spread over processes the
shared limit is never exceeded; a bucket too slow to lease is charged per
request; a block leased in a rolled-back transaction is forgotten; a window
lease never outlives its window; a block becomes usable by the process only
once the transaction that leased it committed (never from a rolled-back one).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_authority._hot import begin_txn, end_txn
from passgeni_authority._ratelimit import (
    LEASE_SECONDS,
    Leases,
    leased_gcra,
    leased_window,
    take_leased,
)

#: A fixed instant (the start of a 60-second window plus 30 s).
NOW = 1_700_000_010.0


@dataclass
class Process:
    """One authority process: its own database connection and its own leases."""

    conn: Connection
    leases: Leases = field(default_factory=Leases)
    admitted: int = 0

    def _request(self, call: Callable[[], float | None]) -> tuple[float | None, list[str]]:
        """One request in its own committed transaction, as the service runs it;
        returns its answer and the buckets it leased from the database."""
        with self.conn.begin():
            state = begin_txn(self.conn)
            try:
                retry = call()
            finally:
                end_txn(self.conn)
        state.committed()  # after the COMMIT only: the leases become usable
        if retry is None:
            self.admitted += 1
        return retry, list(state.leases)

    def gcra(
        self, name: str, burst: int, rate: float, now: float
    ) -> tuple[float | None, list[str]]:
        return self._request(lambda: leased_gcra(self.conn, self.leases, name, burst, rate, now))

    def window(
        self, name: str, limit: int, period: float, now: float
    ) -> tuple[float | None, list[str]]:
        return self._request(
            lambda: leased_window(self.conn, self.leases, name, limit, period, now)
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AuthorityService]:
    svc = AuthorityService(AuthoritySettings(state_dir=tmp_path))
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def processes(service: AuthorityService) -> Iterator[tuple[Process, Process]]:
    first, second = service.engine.connect(), service.engine.connect()
    try:
        yield Process(first), Process(second)
    finally:
        first.close()
        second.close()


def _stored(service: AuthorityService, bucket: str) -> float | None:
    with service.engine.connect() as conn:
        row = conn.execute(
            text("SELECT value FROM rate_limit_buckets WHERE bucket = :b"), {"b": bucket}
        ).first()
    return None if row is None else float(row[0])


def _charged(service: AuthorityService, name: str, rate: float, now: float) -> float:
    """Tokens the database has counted for GCRA bucket ``name`` at ``now``."""
    tat = _stored(service, f"g:{name}")
    return 0.0 if tat is None else (tat - now) * rate


#: Timestamps near 1.7e9 carry ~2e-7 s of rounding: compare token counts to 1/100.
TOKEN = 0.01


def _tokens(counted: float, expected: float) -> bool:
    return math.isclose(counted, expected, abs_tol=TOKEN)


def test_two_processes_never_admit_more_than_the_burst(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    burst, rate = 100, 1000.0
    assert int(min(burst / 4, rate * LEASE_SECONDS)) >= 2  # a fast bucket: leased
    refused: dict[int, float] = {}
    leases_taken = 0
    for i in range(400):
        p = i % 2
        retry, acquired = processes[p].gcra("fast", burst, rate, NOW)
        leases_taken += len(acquired)
        if retry is None:
            refused.pop(p, None)
        else:
            assert retry > 0
            refused[p] = retry
        # The database never counts more than the burst.
        assert _charged(service, "fast", rate, NOW) <= burst + TOKEN, i
        if len(refused) == 2:
            break
    assert len(refused) == 2, "both processes were eventually refused"
    assert processes[0].admitted + processes[1].admitted == burst
    # Both processes admitted (the bucket is shared, not split up front) from
    # leased blocks: far fewer database writes than requests.
    assert processes[0].admitted > 0 and processes[1].admitted > 0
    assert 2 <= leases_taken < burst / 4
    assert _tokens(_charged(service, "fast", rate, NOW), burst)
    # Still refused for everyone at the same instant, from memory or not.
    for proc in processes:
        assert proc.gcra("fast", burst, rate, NOW)[0] is not None
        assert not take_leased(proc.leases, "fast", NOW)
    # One emission interval later exactly one more request is admitted overall.
    later = NOW + 1 / rate
    results = [proc.gcra("fast", burst, rate, later)[0] for proc in processes]
    assert sum(r is None for r in results) == 1


def test_a_slow_bucket_is_charged_per_request(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    burst, rate = 5, 1.0  # the per-user defaults: too slow to lease two tokens
    assert int(min(burst / 4, rate * LEASE_SECONDS)) < 2
    tats: list[float | None] = [_stored(service, "g:slow")]
    outcomes: list[float | None] = []
    for i in range(8):
        proc = processes[i % 2]
        retry, acquired = proc.gcra("slow", burst, rate, NOW)
        assert acquired == []  # never leased
        assert not take_leased(proc.leases, "slow", NOW)  # nothing held in memory
        outcomes.append(retry)
        tats.append(_stored(service, "g:slow"))
    assert [r is None for r in outcomes] == [True] * 5 + [False] * 3
    assert all(r is not None and 0 < r <= 1.0 for r in outcomes[5:])
    # Every admitted request moved the stored TAT by one interval; refusals did not.
    for i in range(5):
        before, after = tats[i], tats[i + 1]
        assert after is not None
        assert math.isclose(after - (before if before is not None else NOW), 1 / rate, abs_tol=1e-6)
    assert tats[5] == tats[6] == tats[7] == tats[8]
    assert _tokens(_charged(service, "slow", rate, NOW), burst)


def test_a_lease_is_usable_by_the_process_only_after_its_commit(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    burst, rate = 100, 1000.0
    size = int(min(burst / 4, rate * LEASE_SECONDS))
    conn, leases = processes[0].conn, processes[0].leases
    transaction = conn.begin()
    state = begin_txn(conn)
    assert leased_gcra(conn, leases, "pend", burst, rate, NOW) is None
    assert list(state.leases) == ["g:pend"]
    # Later requests of the same transaction use the block (no second lease)...
    assert leased_gcra(conn, leases, "pend", burst, rate, NOW) is None
    assert state.leases["g:pend"][0] == size - 2
    # ... but nothing else in the process may, before the commit (the fast path
    # reads only committed leases): the commit could still fail.
    assert not take_leased(leases, "pend", NOW)
    end_txn(conn)
    transaction.commit()
    assert not take_leased(leases, "pend", NOW)
    state.committed()
    # Committed: what the transaction left of the block, and no more.
    for _ in range(size - 2):
        assert take_leased(leases, "pend", NOW)
    assert not take_leased(leases, "pend", NOW)
    assert _tokens(_charged(service, "pend", rate, NOW), size)


def test_a_lease_rolled_back_is_never_used(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    burst, rate = 100, 1000.0
    size = int(min(burst / 4, rate * LEASE_SECONDS))
    first, second = processes
    conn, leases = first.conn, first.leases
    transaction = conn.begin()
    state = begin_txn(conn)
    assert leased_gcra(conn, leases, "rb", burst, rate, NOW) is None
    assert list(state.leases) == ["g:rb"]
    end_txn(conn)
    transaction.rollback()  # so state.committed() never runs
    # The database does not count the block any more...
    assert _stored(service, "g:rb") is None
    # ... and the process never admits from it either.
    assert not take_leased(leases, "rb", NOW)
    retry, again = first.gcra("rb", burst, rate, NOW)
    assert retry is None and again == ["g:rb"], "the next request leased from the database"
    assert _tokens(_charged(service, "rb", rate, NOW), size)
    # Drain the bucket from both processes: exactly the burst, all counted.
    for i in range(400):
        proc = processes[i % 2]
        proc.gcra("rb", burst, rate, NOW)
        assert _charged(service, "rb", rate, NOW) <= burst + TOKEN
    assert first.admitted + second.admitted == burst
    assert not take_leased(first.leases, "rb", NOW)
    assert not take_leased(second.leases, "rb", NOW)


def test_a_lease_is_used_up_by_its_count_and_lapses_at_its_deadline() -> None:
    leases = Leases()
    leases.grant("g:c", 2, NOW + 0.1)
    assert leases.take("g:c", NOW) and leases.take("g:c", NOW) and not leases.take("g:c", NOW)
    assert leases.unused("g:c") == 0  # used up: nothing to hand back
    leases.grant("g:d", 5, NOW + 0.1)
    assert leases.take("g:d", NOW)
    assert not leases.take("g:d", NOW + 0.1)
    # Lapsed with 4 unused: kept once for the next lease to hand back.
    assert leases.unused("g:d") == 4 and leases.unused("g:d") == 0
    leases.keep_unused("g:d", 4)  # a lease that could not be taken puts them back
    assert leases.unused("g:d") == 4


def test_window_leases_never_exceed_the_limit_or_outlive_the_window(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    limit, period = 6000, 60.0
    start = math.floor(NOW / period) * period
    bucket = f"w:win:{int(start)}"
    refused: set[int] = set()
    leases_taken = 0
    for i in range(3 * limit):
        p = i % 2
        retry, acquired = processes[p].window("win", limit, period, NOW)
        leases_taken += len(acquired)
        if retry is None:
            refused.discard(p)
            counted = _stored(service, bucket)
            assert counted is not None and counted <= limit, i
        else:
            # A sliding window: this window's count becomes the next one's previous,
            # so one more fits once 1/limit of the next window has passed.
            end = start + period
            assert end - NOW < retry <= end + period / limit - NOW + 1e-6
            refused.add(p)
            if len(refused) == 2:
                break
    assert refused == {0, 1}
    assert processes[0].admitted + processes[1].admitted == limit
    assert processes[0].admitted > 0 and processes[1].admitted > 0
    assert leases_taken < limit / 2  # most requests were admitted from memory

    # A lease taken just before the window ends lapses with the window.
    end = start + 2 * period  # the end of the next window
    before_end = end - 0.1
    fresh = Process(processes[0].conn)
    retry, acquired = fresh.window("win2", limit, period, before_end)
    assert retry is None and acquired == [f"w:win2:{int(end - period)}"]
    assert take_leased(fresh.leases, "win2", before_end, period=period)
    after_end = end + 0.05  # still within LEASE_SECONDS of the lease
    assert after_end < before_end + LEASE_SECONDS
    assert not fresh.leases.take(acquired[0], after_end)
    assert not take_leased(fresh.leases, "win2", after_end, period=period)
    # The new window is leased from the database afresh.
    retry, acquired = fresh.window("win2", limit, period, after_end)
    assert retry is None and acquired == [f"w:win2:{int(end)}"]


def test_a_failed_commit_leaves_nothing_the_fast_path_could_admit(
    service: AuthorityService,
) -> None:
    """Regression: leases were once usable while their transaction's COMMIT was
    still running, so a failed commit could leave requests admitted that no
    database ever counted."""
    from sqlalchemy import event

    from passgeni_core import AuthorityUnavailable

    key = service.create_api_key("lease-commit", rate_limit=100_000).key
    seen: list[object] = []

    def fail(conn: Connection) -> None:
        # What the event loop's fast path would see mid-commit.
        seen.append(service.gate.admitted_without_write(key, service.now()))
        raise RuntimeError("disk full")

    event.listen(service.engine, "commit", fail)
    try:
        with pytest.raises((AuthorityUnavailable, RuntimeError)):
            asyncio.run(service.authorize(key, ip="10.0.0.1", endpoint="GET /api/audit"))
    finally:
        event.remove(service.engine, "commit", fail)
    assert seen and all(s is None for s in seen)
    assert service.gate.admitted_without_write(key, service.now()) is None
    assert _stored(service, "g:key:" + key.split("_")[1]) is None
    # A commit that succeeds makes the block usable: the fast path admits.
    asyncio.run(service.authorize(key, ip="10.0.0.1", endpoint="GET /api/audit"))
    assert service.gate.admitted_without_write(key, service.now()) is not None


def test_the_unused_tokens_of_a_lapsed_lease_go_back_to_the_window(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    """Regression: lapsed leases were charged in full, so a busy automation key
    (two processes leasing every 0.25 s) ran out of its per-minute budget long
    before using it (the benchmark's 1e9/minute key got 429s after ~30 s)."""
    limit, period = 6000, 60.0
    size = int(min(limit / 4, limit / period * LEASE_SECONDS))
    assert size == 25
    start = math.floor(NOW / period) * period
    bucket = f"w:ret:{int(start)}"
    proc = processes[0]
    assert proc.window("ret", limit, period, NOW) == (None, [bucket])
    assert _stored(service, bucket) == size  # the block is counted up front
    later = NOW + LEASE_SECONDS + 0.05  # same window; the first lease has lapsed
    assert proc.window("ret", limit, period, later) == (None, [bucket])
    # Two requests used; the new block's 24 are outstanding: 26, not 50.
    assert _stored(service, bucket) == 2 + (size - 1)


def test_the_unused_tokens_of_a_lapsed_lease_go_back_to_the_gcra_bucket(
    service: AuthorityService, processes: tuple[Process, Process]
) -> None:
    burst, rate = 100, 100.0
    size = int(min(burst / 4, rate * LEASE_SECONDS))
    assert size == 25
    first, second = processes
    first.gcra("gret", burst, rate, NOW)  # TAT: NOW + 0.25
    second.gcra("gret", burst, rate, NOW)  # TAT: NOW + 0.50 (two blocks outstanding)
    later = NOW + LEASE_SECONDS + 0.01  # the first block lapsed with 24 unused
    assert first.gcra("gret", burst, rate, later)[0] is None
    tat = _stored(service, "g:gret")
    assert tat is not None
    # Charged: second's block (from NOW) + first's 1 used + its new block, not
    # 24 forfeited tokens more.
    assert math.isclose(tat, NOW + 0.50 - 24 / rate + size / rate, abs_tol=1e-6), tat - NOW
