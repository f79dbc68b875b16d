"""The issuance hot path's SQL, run on the driver connection directly.

Every authenticated request runs about ten short statements (key lookup,
two rate-limit upserts, a usage event, the operation, savepoints). Through
SQLAlchemy each costs far more Python than the statement itself, even when
prebuilt; on the driver's own cursor (``sqlite3`` or ``psycopg``) it costs
little, and on SQLite every statement of a group commit runs in the one
writer thread, so this decides how many requests per second a process
serves.

The statements (all in :mod:`._sql`) are plain SQL that SQLite (>= 3.35)
and PostgreSQL both accept (``ON CONFLICT``, ``RETURNING``), written with
``:name`` parameters and converted once to psycopg's ``%(name)s``. They run inside the caller's
SQLAlchemy transaction (same connection). Values are bound the way the
schema's types store them (:class:`~passgeni_authority._db.UTCDateTime`:
naive UTC text on SQLite, ``timestamptz`` on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from . import _sql

__all__ = [
    "DEFERRED",
    "GROUP_MEMO",
    "PENDING_RELEASE",
    "PENDING_SAVEPOINT",
    "Deferred",
    "KeyRows",
    "Readers",
    "TxnState",
    "after_commit",
    "begin_txn",
    "defer",
    "dt",
    "dt_for",
    "end_txn",
    "execute",
    "executemany",
    "flush",
    "forget_savepoints",
    "memo",
    "parse_dt",
    "take_savepoint",
    "txn",
]

#: ``Connection.info`` key of the group commit's list of deferred inserts.
DEFERRED = "passgeni_deferred_inserts"
#: ``Connection.info`` key of a dict that lives for one group commit (see :func:`memo`).
GROUP_MEMO = "passgeni_group_memo"
_DRIVER = "passgeni_driver"
#: ``Connection.info`` keys: a unit's SAVEPOINT not sent yet, the previous
#: unit's RELEASE not sent yet (see ``_savepoints.Savepoint``).
PENDING_SAVEPOINT = "passgeni_pending_savepoint"
PENDING_RELEASE = "passgeni_pending_release"
_TXN = "passgeni_txn"

_PARAM_RE = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_converted: dict[str, str] = {}


def _sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _statement(conn: Connection, sql: str) -> str:
    if _sqlite(conn):
        return sql  # sqlite3 takes :name parameters as they are
    converted = _converted.get(sql)
    if converted is None:
        converted = _PARAM_RE.sub(r"%(\1)s", sql)
        _converted[sql] = converted
    return converted


def dt(conn: Connection, value: datetime) -> Any:
    """A UTC datetime as the column stores it (see ``UTCDateTime``)."""
    return dt_for(conn.dialect.name, value)


def dt_for(dialect: str, value: datetime) -> Any:
    """:func:`dt` by dialect name (for rows prepared before a connection is at hand)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if dialect == "sqlite":
        # The "%Y-%m-%d %H:%M:%S.%f" text SQLAlchemy's SQLite DateTime stores;
        # isoformat writes it much faster than strftime.
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def _checked_driver(driver: Any) -> Any:
    # SQLAlchemy types driver_connection as Optional (None once invalidated);
    # a checked-out connection always has one, so None is a bug, said loudly.
    if driver is None:
        raise RuntimeError("database connection has no driver connection (invalidated)")
    return driver


def _driver(conn: Connection) -> Any:
    """The DBAPI driver connection (sqlite3 / psycopg) under ``conn``."""
    # Kept in conn.info: SQLAlchemy's property chain would run on every statement.
    driver = conn.info.get(_DRIVER)
    if driver is None:
        driver = _checked_driver(conn.connection.driver_connection)
        conn.info[_DRIVER] = driver
    return driver


class KeyRows:
    """API key rows by key hash, kept until any process of this authority revokes a key.

    Every request looks its key up; on SQLite that is a read transaction
    (shared-memory locks, and a page cache another connection's commit has
    just invalidated), for a row that changes only on revocation.
    The signal is a file beside the database (one host, by construction):
    :meth:`revoked` appends a byte to it after a revocation commits, and
    every lookup first ``stat``s it (cheap) and forgets everything when its
    size or inode changed. A request that checks in the microseconds between
    a revocation's commit and its signal is admitted, as if it had arrived
    just before. ``path=None`` (PostgreSQL: processes on several hosts)
    caches nothing. Negative answers are never kept (random keys must not
    fill the cache), and at most ``size`` rows are.

    The file is only the fast signal of the processes that spell the database's
    path the same way. The database itself is the authority: ``probe`` returns its
    revocation state (how many keys are revoked, the latest revocation) and is
    asked at most every ``interval`` seconds; when it changed, everything is
    forgotten. So a key revoked by another spelling of the path (a symlink, a
    container's bind mount) or in SQL by an operator is refused by every process
    within ``interval`` (1 s) of its commit.
    """

    def __init__(
        self,
        path: str | None,
        size: int = 1024,
        *,
        probe: Callable[[], Any] | None = None,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._size = size
        self._rows: dict[str, Any] = {}
        self._seen: tuple[int, int] | None = None
        self._probe = probe
        self._interval = interval
        self._clock = clock
        self._probed_at = -float("inf")
        self._state: Any = None
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)

    def _current(self) -> bool:
        """Whether the cache may be used; drops it when a revocation happened."""
        if self._path is None:
            return False
        try:
            info = os.stat(self._path)
        except OSError:
            self._rows.clear()
            self._seen = None
            return False
        seen = (info.st_ino, info.st_size)
        if seen != self._seen:
            self._rows.clear()
            self._seen = seen
        if self._probe is not None and self._clock() - self._probed_at >= self._interval:
            try:
                state = self._probe()
            except Exception:
                self._rows.clear()  # cannot tell: read every key until it can
                return False
            self._probed_at = self._clock()
            if state != self._state:
                self._rows.clear()
                self._state = state
        return True

    def get(self, key_hash: str) -> Any:
        """The cached row, or None (look it up, then :meth:`put`)."""
        return self._rows.get(key_hash) if self._current() else None

    def put(self, key_hash: str, row: Any) -> None:
        """Keep a row read *after* :meth:`get` checked the signal (else a
        revocation in between could be cached as unrevoked)."""
        if self._path is None or row is None:
            return
        if len(self._rows) >= self._size:
            self._rows.clear()
        self._rows[key_hash] = row

    def revoked(self) -> None:
        """Tell every process (this one included) that a key was revoked.

        Raises:
            OSError: the signal file cannot be written.
        """
        if self._path is None:
            return
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, b"r")
        finally:
            os.close(fd)
        self._rows.clear()


class Readers:
    """One autocommit read connection per thread, outside the pool.

    The issuance paths read a few committed rows per request (the caller's
    key, a stored request) on the event loop's thread; a pool checkout and
    return cost more than the query. Each thread keeps its own connection
    (DBAPI connections are not shared across threads) until :meth:`close`.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def _connection(self) -> Any:
        raw = getattr(self._local, "raw", None)
        if raw is None:
            raw = self._engine.raw_connection()
            driver = _checked_driver(raw.driver_connection)
            if self._engine.dialect.name != "sqlite":
                # No transaction left open between reads (it would hold back vacuum).
                raw.rollback()
                driver.autocommit = True
            self._local.raw = raw
            with self._lock:
                self._all.append(raw)
        return raw

    def read(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """Rows of one read-only query: the last committed state, no write lock."""
        raw = self._connection()
        statement = sql if self._engine.dialect.name == "sqlite" else _PARAM_RE.sub(r"%(\1)s", sql)
        try:
            cursor = _checked_driver(raw.driver_connection).execute(statement, params)
            return list(cursor.fetchall())
        except Exception:
            # A broken connection is not reused (the next read opens another).
            self._local.raw = None
            with contextlib.suppress(Exception):
                raw.invalidate()
            raise

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for raw in connections:
            with contextlib.suppress(Exception):
                if self._engine.dialect.name != "sqlite":
                    _checked_driver(raw.driver_connection).autocommit = False
                raw.close()


def parse_dt(value: Any) -> datetime:
    """A stored UTC datetime read back, aware."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def execute(
    conn: Connection, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None
) -> Any:
    """Run one statement in ``conn``'s transaction; returns the driver's cursor.

    ``params`` is a mapping for ``:name`` parameters, or a sequence for
    SQLite's positional ``?`` (SQLite-only statements)."""
    info = conn.info  # a chain of properties: read once per statement
    driver = info.get(_DRIVER) or _driver(conn)
    if PENDING_SAVEPOINT in info or PENDING_RELEASE in info:
        if not _sqlite(conn) and _pipelines():
            # The previous unit's RELEASE, this unit's SAVEPOINT and its first
            # statement in one round trip (psycopg's pipeline mode).
            with driver.pipeline():
                take_savepoint(info, driver)
                cursor = driver.execute(_statement(conn, sql), {} if params is None else params)
            return cursor
        take_savepoint(info, driver)
    return driver.execute(_statement(conn, sql), {} if params is None else params)


def executemany(
    conn: Connection, sql: str, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]
) -> int:
    """One statement per row, in ``conn``'s transaction; the rows it changed."""
    info = conn.info
    driver = info.get(_DRIVER) or _driver(conn)
    pending = PENDING_SAVEPOINT in info or PENDING_RELEASE in info
    if _sqlite(conn):
        if pending:
            take_savepoint(info, driver)
        changed: int = driver.executemany(sql, rows).rowcount
        return changed
    with driver.cursor() as cursor:
        if pending and _pipelines():
            with driver.pipeline():  # in the round trip of the rows (see execute)
                take_savepoint(info, driver)
                cursor.executemany(_statement(conn, sql), rows)
        else:
            if pending:
                take_savepoint(info, driver)
            cursor.executemany(_statement(conn, sql), rows)
        changed = cursor.rowcount
        return changed


@functools.cache
def _pipelines() -> bool:
    """Whether psycopg can pipeline (libpq >= 14); without, each statement is a round trip."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def memo(conn: Connection) -> dict[Any, Any] | None:
    """A dict shared by the units of the current group commit, or None outside one.

    For lookups many requests of one group repeat (the API key, the user's
    team): they run inside the same write transaction, so a value read by
    an earlier unit is what a later one would read again.
    """
    value: dict[Any, Any] | None = conn.info.get(GROUP_MEMO)
    return value


#: A deferred write: a statement, or a function writing a batch of rows at once.
Deferred = str | Callable[[Connection, list[dict[str, Any]]], None]


def defer(conn: Connection, sql: Deferred, params: dict[str, Any]) -> None:
    """An insert nobody reads back before the commit (a usage event, a log leaf).

    In a group commit it is queued and written with the group's other
    deferred rows in one ``executemany`` just before the ``COMMIT`` (same
    transaction, same durability); elsewhere it runs now. ``sql`` may be a
    function of the connection and the rows: it then gets all of the
    group's rows for it at once, in the order the units deferred them, after
    the statements (the transparency log appends the group's leaves so, with
    its one counter row locked last: see ``_tlog``).
    """
    pending: list[tuple[Deferred, dict[str, Any]]] | None = conn.info.get(DEFERRED)
    if pending is None:
        if callable(sql):
            sql(conn, [params])
        else:
            execute(conn, sql, params)
    else:
        pending.append((sql, params))


def flush(conn: Connection, pending: Sequence[tuple[Deferred, dict[str, Any]]]) -> None:
    """Write deferred inserts, one ``executemany`` per statement, in order; then
    each deferred function once with its rows."""
    by_sql: dict[Deferred, list[dict[str, Any]]] = {}
    for sql, params in pending:
        by_sql.setdefault(sql, []).append(params)
    batches = []
    for sql, rows in by_sql.items():
        if callable(sql):
            batches.append((sql, rows))
        else:
            executemany(conn, sql, rows)
    for write, rows in batches:
        write(conn, rows)


class TxnState:
    """What a write transaction has decided in memory, applied only once it commits.

    ``after`` are callbacks to run after the commit (making a lease usable,
    remembering that a row is stored); ``leases`` are rate-limit blocks
    leased in this transaction and not yet usable outside it (bucket ->
    tokens left, deadline, quota left in the database, full again at). A unit that rolls back restores both to what
    they were before it (see :meth:`mark` / :meth:`restore`); a transaction
    that rolls back simply drops them. So nothing in memory ever relies on
    a write that was not committed.
    """

    __slots__ = ("after", "leases")

    def __init__(self) -> None:
        self.after: list[Callable[[], None]] = []
        self.leases: dict[str, tuple[int, float, int, float]] = {}

    def mark(self) -> tuple[int, dict[str, tuple[int, float, int, float]]]:
        return len(self.after), dict(self.leases)

    def restore(self, mark: tuple[int, dict[str, tuple[int, float, int, float]]]) -> None:
        del self.after[mark[0] :]
        self.leases = mark[1]

    def committed(self) -> None:
        """Run the callbacks (the transaction is committed)."""
        for callback in self.after:
            callback()


def begin_txn(conn: Connection) -> TxnState:
    """Start tracking a write transaction's in-memory decisions on ``conn``."""
    state = TxnState()
    conn.info[_TXN] = state
    return state


def end_txn(conn: Connection) -> TxnState:
    """Stop tracking; the caller runs ``committed()`` only if the commit succeeded."""
    state: TxnState | None = conn.info.pop(_TXN, None)
    forget_savepoints(conn)
    return state if state is not None else TxnState()


def txn(conn: Connection) -> TxnState:
    """The state of the write transaction open on ``conn``.

    Raises:
        RuntimeError: ``conn`` has no tracked transaction (a bug: every write
            goes through the service's transaction helpers).
    """
    state: TxnState | None = conn.info.get(_TXN)
    if state is None:
        raise RuntimeError("no tracked write transaction on this connection")
    return state


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current transaction (and this unit) is committed."""
    txn(conn).after.append(callback)


def take_savepoint(info: dict[Any, Any], driver: Any) -> None:
    """Send what the savepoints of the transaction left pending (see ``_savepoints.Savepoint``)."""
    if info.pop(PENDING_RELEASE, False):
        driver.execute(_sql.RELEASE_SAVEPOINT)
    if info.pop(PENDING_SAVEPOINT, False):
        driver.execute(_sql.SAVEPOINT)


def forget_savepoints(conn: Connection) -> None:
    """The transaction ended: nothing of its savepoints is pending any more."""
    info = conn.info
    info.pop(PENDING_SAVEPOINT, None)
    info.pop(PENDING_RELEASE, None)
