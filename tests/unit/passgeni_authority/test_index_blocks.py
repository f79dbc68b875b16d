"""Status-list indexes come from blocks a process reserved: never twice, never from a
reservation that rolled back, one counter update per block rather than per request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_authority._hot import begin_txn, end_txn
from passgeni_authority._status import IndexBlocks


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AuthorityService]:
    svc = AuthorityService(AuthoritySettings(state_dir=tmp_path))
    try:
        yield svc
    finally:
        svc.close()


def _counter(service: AuthorityService) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(text("SELECT next_idx FROM status_list_counter")).scalar_one())


def _take(conn: Connection, blocks: IndexBlocks, count: int, *, commit: bool = True) -> int:
    """One request's reservation in its own transaction, as the service runs it."""
    transaction = conn.begin()
    state = begin_txn(conn)
    first = blocks.take(conn, count)
    end_txn(conn)
    if commit:
        transaction.commit()
        state.committed()
    else:
        transaction.rollback()
    return first


def test_a_block_serves_later_requests_from_memory(service: AuthorityService) -> None:
    start = _counter(service)
    blocks = IndexBlocks(size=10)
    with service.engine.connect() as conn:
        firsts = [_take(conn, blocks, 3) for _ in range(3)]
        assert firsts == [start, start + 3, start + 6]
        assert _counter(service) == start + 10, "one counter update for three requests"
        # Not enough left in the block (1 < 3): a new block, the rest never used.
        assert _take(conn, blocks, 3) == start + 10
        assert _counter(service) == start + 20
        # A request larger than a block reserves exactly what it needs...
        assert _take(conn, blocks, 25) == start + 20
        assert _counter(service) == start + 45
        # ... and leaves the block in memory to the requests after it.
        assert _take(conn, blocks, 2) == start + 13


def test_a_reservation_rolled_back_is_never_used(service: AuthorityService) -> None:
    start = _counter(service)
    blocks = IndexBlocks(size=10)
    with service.engine.connect() as conn:
        assert _take(conn, blocks, 2, commit=False) == start
        assert _counter(service) == start, "the counter update rolled back"
        # The rolled-back block was not adopted: the next request reserves afresh,
        # and gets the same indexes the rolled-back one had (nobody used them).
        assert _take(conn, blocks, 2) == start
        assert _take(conn, blocks, 2) == start + 2


def test_two_processes_never_share_an_index(service: AuthorityService) -> None:
    one, two = IndexBlocks(size=4), IndexBlocks(size=4)
    seen: list[int] = []
    with service.engine.connect() as a, service.engine.connect() as b:
        for i in range(30):
            conn, blocks = (a, one) if i % 2 == 0 else (b, two)
            count = 1 + i % 3
            first = _take(conn, blocks, count)
            seen.extend(range(first, first + count))
    assert len(seen) == len(set(seen)), "an index was handed out twice"
