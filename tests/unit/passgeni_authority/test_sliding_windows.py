"""The sliding window and refunds of ``_ratelimit`` against a real SQLite database:
a refused request is not counted, a request alone over the limit can never fit, no
clock boundary lets twice the limit through, and a refund undoes an admission."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from passgeni_authority._db import metadata
from passgeni_authority._hot import begin_txn, end_txn
from passgeni_authority._ratelimit import Leases, gcra_verdict, refund, window_verdict

HOUR = 3600.0
START = 1_800_000_000.0  # a multiple of 3600


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    metadata.create_all(engine)
    with engine.connect() as connection, connection.begin():
        begin_txn(connection)
        try:
            yield connection
        finally:
            end_txn(connection)
    engine.dispose()


def _stored(conn: Connection, bucket: str) -> float | None:
    row = conn.execute(
        text("SELECT value FROM rate_limit_buckets WHERE bucket = :b"), {"b": bucket}
    ).first()
    return None if row is None else float(row[0])


def test_a_refused_request_is_not_counted(conn: Connection) -> None:
    assert window_verdict(conn, "ip", 10, HOUR, START + 1, amount=6)[0] is None
    retry, left, _reset, charge = window_verdict(conn, "ip", 10, HOUR, START + 2, amount=5)
    assert retry is not None and retry > 0 and left == 0 and charge is None
    assert _stored(conn, f"w:ip:{int(START)}") == 6  # the refused 5 left no trace
    assert window_verdict(conn, "ip", 10, HOUR, START + 3, amount=4)[1] == 0


def test_a_request_alone_over_the_limit_never_fits(conn: Connection) -> None:
    retry, *_ = window_verdict(conn, "ip", 10, HOUR, START + 1, amount=11)
    assert retry is not None and math.isinf(retry)
    assert _stored(conn, f"w:ip:{int(START)}") is None


def test_no_burst_across_the_boundary(conn: Connection) -> None:
    closed: dict[str, float] = {}
    end = START + HOUR
    for i in range(10):
        assert window_verdict(conn, "b", 10, HOUR, end - 10 + i, closed=closed)[0] is None
    # A fixed window would admit 10 more here; the sliding one none, for a while.
    retry, *_ = window_verdict(conn, "b", 10, HOUR, end + 1, closed=closed)
    assert retry is not None and 350 < retry < 370  # 10 weigh 9 a tenth into the hour
    assert window_verdict(conn, "b", 10, HOUR, end + 1 + retry, closed=closed)[0] is None
    # Half-way through, half of the previous window is forgotten.
    admitted = sum(
        window_verdict(conn, "b", 10, HOUR, end + HOUR / 2, closed=closed)[0] is None
        for _ in range(10)
    )
    assert admitted == 4  # 10 x 0.5 + 1 already admitted, of 10


def test_a_refund_undoes_an_admission(conn: Connection) -> None:
    leases = Leases()
    retry, left, _reset, charge = gcra_verdict(conn, "u", 5, 1.0, START)
    assert retry is None and left == 4 and charge is not None
    refund(conn, leases, charge)
    assert gcra_verdict(conn, "u", 5, 1.0, START)[1] == 4  # as if the first never was
    retry, left, _reset, charge = window_verdict(conn, "m", 60, 60.0, START, amount=3)
    assert retry is None and left == 57 and charge is not None
    refund(conn, leases, charge)
    assert _stored(conn, f"w:m:{int(START)}") == 0
