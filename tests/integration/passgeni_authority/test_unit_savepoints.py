"""A group commit's units roll back alone, on SQLite and on a real PostgreSQL,
with savepoints taken only by units that run a statement and, on PostgreSQL,
released together with the next statement (``_savepoints.Savepoint``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from passgeni_authority import _hot
from passgeni_authority._commit import GroupCommitter
from tests.support.postgres import PostgresCluster

_INSERT = "INSERT INTO probe (name) VALUES (:name)"


class _Refused(Exception):
    """A unit's own failure."""


def _writes(name: str) -> Callable[[Connection], str]:
    def unit(conn: Connection) -> str:
        _hot.execute(conn, _INSERT, {"name": name})
        return name

    return unit


def _writes_then_fails(name: str) -> Callable[[Connection], str]:
    def unit(conn: Connection) -> str:
        _hot.execute(conn, _INSERT, {"name": name})
        raise _Refused(name)

    return unit


def _writes_through_sqlalchemy(name: str) -> Callable[[Connection], str]:
    def unit(conn: Connection) -> str:
        conn.execute(text(_INSERT), {"name": name})
        return name

    return unit


def _duplicate(name: str) -> Callable[[Connection], str]:
    # A database error inside the unit (the unique key), as a redemption's
    # single-use gate raises it.
    return _writes(name)


def _no_sql(conn: Connection) -> str:
    return "nothing"


def _fails_without_sql(conn: Connection) -> str:
    raise _Refused("before any statement")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'probe.db'}"
        made = create_engine(url)

        @event.listens_for(made, "connect")
        def _manual(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # as the authority's SQLite engine

        @event.listens_for(made, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        made = create_engine(cluster.create_database(f"probe_{uuid.uuid4().hex[:8]}"))
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE probe (name VARCHAR(20) PRIMARY KEY)"))
    try:
        yield made
    finally:
        made.dispose()


def _run(engine: Engine, units: list[Callable[[Connection], str]]) -> list[Future[str]]:
    committer = GroupCommitter(engine, None, lambda exc: exc)
    group = [(unit, Future[str]()) for unit in units]
    with engine.connect() as conn:
        committer._commit_group(conn, group)  # one group, as the loop would gather it
    return [future for _unit, future in group]


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(row[0] for row in conn.execute(text("SELECT name FROM probe")))


def test_each_failing_unit_rolls_back_alone(engine: Engine) -> None:
    futures = _run(
        engine,
        [
            _writes("a"),
            _writes_then_fails("b"),
            _no_sql,
            _writes_through_sqlalchemy("c"),
            _fails_without_sql,
            _writes("d"),
            _duplicate("a"),
            _writes("e"),
        ],
    )
    assert [f.exception() is None for f in futures] == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    assert isinstance(futures[1].exception(), _Refused)
    assert isinstance(futures[4].exception(), _Refused)
    assert futures[6].exception() is not None  # the duplicate key, that unit only
    assert _stored(engine) == ["a", "c", "d", "e"]


def test_a_group_after_a_group_starts_clean(engine: Engine) -> None:
    # The last unit's savepoint is left to the COMMIT: nothing of it may
    # leak into the next transaction on the same connection.
    committer = GroupCommitter(engine, None, lambda exc: exc)
    with engine.connect() as conn:
        for names in (("a", "b"), ("c",), ("d", "e")):
            group = [(_writes(n), Future[str]()) for n in names]
            committer._commit_group(conn, group)
            assert all(f.exception() is None for _u, f in group)
    assert _stored(engine) == ["a", "b", "c", "d", "e"]


def test_units_without_statements_take_no_savepoint(tmp_path: Path) -> None:
    made = create_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    seen: list[str] = []

    @event.listens_for(made, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.set_trace_callback(seen.append)

    with made.begin() as conn:
        conn.execute(text("CREATE TABLE probe (name VARCHAR(20) PRIMARY KEY)"))
    seen.clear()
    futures = _run(made, [_no_sql, _writes("a"), _no_sql, _fails_without_sql, _no_sql])
    assert [f.exception() is None for f in futures] == [True, True, True, False, True]
    assert sum(s.startswith("SAVEPOINT") for s in seen) == 1
    assert sum(s.startswith("RELEASE") for s in seen) == 1
    assert _stored(made) == ["a"]
    made.dispose()


def test_without_pipelines_each_statement_goes_alone(
    postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A libpq older than 14 has no pipeline mode: the pending RELEASE and
    # SAVEPOINT are then sent one by one, with the same outcome.
    monkeypatch.setattr(_hot, "_pipelines", lambda: False)
    made = create_engine(postgres.create_database(f"probe_{uuid.uuid4().hex[:8]}"))
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE probe (name VARCHAR(20) PRIMARY KEY)"))
    futures = _run(made, [_writes("a"), _writes("b"), _duplicate("a"), _no_sql, _writes("c")])
    assert [f.exception() is None for f in futures] == [True, True, False, True, True]
    assert _stored(made) == ["a", "b", "c"]
    made.dispose()
