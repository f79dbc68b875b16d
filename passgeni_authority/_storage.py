"""The authority's storage layer: one database, its transactions and its group commit.

The layer is these modules together, nothing else touches the database
directly:

* :mod:`._db`: the schema (SQLAlchemy tables), engines and migrations;
* :mod:`._sql`: every raw SQL statement, named from those tables;
* :mod:`._hot`: running statements on the driver connection inside a
  transaction (deferred inserts, per-group memo, after-commit callbacks);
* :mod:`._commit`: group commit (many requests' writes, one commit);
* here: engines, migrations on start, and :class:`Storage`, which opens
  the database and gives the other parts
  their two ways to write: :meth:`Storage.transaction` (a transaction of
  their own, blocking: admin and cold operations, run in threads) and
  :meth:`Storage.write` (the request path, async: joins the group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from passgeni_core import AuthorityUnavailable, InvalidRequest

from . import _hot, _sql
from ._commit import GroupCommitter, WriteLock
from ._db import redact_url
from ._settings import AuthoritySettings
from ._util import db_unavailable

__all__ = ["Storage", "make_engine", "run_migrations", "startup_lock"]

log = logging.getLogger("passgeni_authority")

_T = TypeVar("_T")


def _private_database(path: Path) -> None:
    """Create the SQLite file owner-only before SQLite opens it (issue #21): it holds the
    session secret and API key hashes, and SQLite gives its WAL and shared-memory files the
    database file's permissions. A state directory others may write to is refused: they could
    replace the database under the authority."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = path.parent.stat().st_mode
    if mode & 0o022:
        raise InvalidRequest(
            f"the state directory {str(path.parent)!r} is writable by group or others "
            f"(mode {mode & 0o777:o}); chmod go-w it (the authority's database lives there)"
        )
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # a database created before this rule


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, full sync, foreign keys and a busy timeout.

    Raises:
        sqlalchemy.exc.ArgumentError: the URL is not a database URL.
    """
    parsed = make_url(url)
    # hide_parameters: SQL logging (``sqlalchemy.engine`` at INFO/DEBUG) and
    # error messages never show bound values - the session secret is one.
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: several processes share the database and it may restart under us.
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
        )
    database = parsed.database
    if database and database != ":memory:":
        _private_database(Path(database))
    engine = create_engine(
        url,
        # A larger statement cache: batch inserts add one statement per batch size.
        connect_args={"check_same_thread": False, "timeout": 30, "cached_statements": 512},
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Manual transaction control (pysqlite's own is broken for our needs):
        # see the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(_sql.SQLITE_WAL)
        # FULL: a commit is on disk before we answer (certificates are evidence).
        cursor.execute(_sql.SQLITE_SYNC_FULL)
        cursor.execute(_sql.SQLITE_FOREIGN_KEYS)
        cursor.execute(_sql.SQLITE_BUSY_TIMEOUT)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write
        # transaction waits (busy_timeout) instead of failing with SQLITE_BUSY
        # when two writers would otherwise both try to upgrade their locks.
        conn.exec_driver_sql(_sql.SQLITE_BEGIN_IMMEDIATE)

    return engine


def durability_warnings(conn: Connection) -> list[str]:
    """What in a PostgreSQL server's settings lets a power cut lose acknowledged
    certificates (docs/reliability.md#power-loss): the authority answers once its
    ``COMMIT`` returned, which means "on disk" only with ``fsync`` and
    ``synchronous_commit`` on. SQLite's sync is the authority's own (``_loopcommit``)."""
    if conn.dialect.name != "postgresql":
        return []
    found = []
    for name, bad in (("fsync", {"off"}), ("synchronous_commit", {"off"})):
        value = conn.execute(text(f"SHOW {name}")).scalar()
        if str(value) in bad:
            found.append(
                f"PostgreSQL has {name}={value}: a power cut can lose certificates already "
                "answered to clients; set it to on for a production authority"
            )
    return found


@contextlib.contextmanager
def startup_lock(engine: Engine) -> Iterator[Connection]:
    """Serialise start-up (migrations, first key, first secret) across processes.

    PostgreSQL: a session advisory lock. SQLite: ``flock`` on a file beside
    the database (every process sharing a SQLite file is on this host).
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(_sql.PG_STARTUP_LOCK))
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text(_sql.PG_STARTUP_UNLOCK))
                conn.commit()
            return
        database = engine.url.database
        if not database or database == ":memory:":
            yield conn
            return
        fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield conn
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _script_location() -> str:
    return str(resources.files("passgeni_authority") / "migrations")


def run_migrations(conn: Connection) -> None:
    """``alembic upgrade head`` on ``conn`` with the migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    conn.commit()


class Storage:
    """One process's connection to the shared database.

    Construction runs the migrations (``alembic upgrade head``, when
    ``settings.migrate_on_start``) and then ``bootstrap`` in the same
    transaction, under a cross-process lock (creating the first rows every
    process needs). Raises AuthorityUnavailable when the database cannot be
    reached, or what ``bootstrap`` raises.
    """

    def __init__(
        self, settings: AuthoritySettings, *, bootstrap: Callable[[Connection], _T]
    ) -> None:
        url = settings.effective_database_url
        try:
            self.engine: Engine = make_engine(url)
            with startup_lock(self.engine) as conn:
                if settings.migrate_on_start:
                    run_migrations(conn)
                bootstrap(conn)
                conn.commit()
                for warning in durability_warnings(conn):
                    log.warning("%s", warning)
        except SQLAlchemyError as exc:
            raise AuthorityUnavailable(
                f"database {redact_url(url)} is unavailable: {type(exc).__name__}"
            ) from None
        self._on_rollback: list[Callable[[], None]] = []
        #: Called on every database error (metrics).
        self.observe_error: Callable[[], None] | None = None
        # SQLite file: writers serialise on a lock (thread + flock) and the
        # request path shares commits through the group committer (one sync
        # per group).
        self.write_lock: WriteLock | None = None
        self.committer: GroupCommitter | None = None
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            self.write_lock = WriteLock(database)
            self.committer = GroupCommitter(
                self.engine,
                self.write_lock,
                self._group_failed,
                on_rollback=self.rolled_back,
                sync_in_loop=settings.wal_sync_in_loop,
            )
        elif self.engine.dialect.name == "postgresql":
            # Every issuing request updates the same few rows (the key's rate
            # buckets, the status-list counter) and holds their locks until its
            # commit is flushed: grouping turns one flush per request into one
            # per group. PostgreSQL itself serialises writers across processes.
            self.committer = GroupCommitter(
                self.engine, None, self._group_failed, on_rollback=self.rolled_back
            )
        # Reads of committed rows on the request path (no pool round trip).
        self.readers = _hot.Readers(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def grouped(self) -> bool:
        """Whether request-path writes share group commits (a file or server database)."""
        return self.committer is not None

    def sibling_path(self, suffix: str) -> str | None:
        """A file beside a SQLite database file (one host, by construction), or
        ``None`` for databases other processes may reach from other hosts."""
        if self.write_lock is None:
            return None
        return f"{self.engine.url.database}.{suffix}"

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a write transaction rolls back (a part
        forgets what it read inside it: it may have seen uncommitted rows)."""
        self._on_rollback.append(callback)

    def rolled_back(self) -> None:
        for callback in self._on_rollback:
            callback()

    def _group_failed(self, exc: Exception) -> AuthorityUnavailable:
        if self.observe_error is not None:
            self.observe_error()
        self.rolled_back()
        return db_unavailable(exc)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction of its own, committed when the block ends (blocking:
        for admin and cold operations, never on the event loop). Database
        failures become AuthorityUnavailable (503)."""
        held = self.write_lock.held() if self.write_lock is not None else contextlib.nullcontext()
        state: _hot.TxnState | None = None
        try:
            with held, self.engine.begin() as conn:
                _hot.begin_txn(conn)
                try:
                    yield conn
                except BaseException:
                    _hot.end_txn(conn)
                    self.rolled_back()
                    raise
                state = _hot.end_txn(conn)
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            # The driver's own errors too: the request path runs on the driver (see _hot).
            log.warning("database error: %s", type(exc).__name__)
            if self.observe_error is not None:
                self.observe_error()
            raise db_unavailable(exc) from None
        if state is not None:
            state.committed()

    async def write(self, unit: Callable[[Connection], _T]) -> _T:
        """Run ``unit`` in a transaction that is committed before this returns.

        With a group committer the unit joins the current group commit (its
        own savepoint, one shared commit); elsewhere it gets a transaction of
        its own in a worker thread. Raises what the unit raises, or
        AuthorityUnavailable.
        """
        if self.committer is not None:
            return await self.committer.run(unit)
        return await asyncio.to_thread(self._alone, unit)

    def _alone(self, unit: Callable[[Connection], _T]) -> _T:
        with self.transaction() as conn:
            return unit(conn)

    def close(self) -> None:
        if self.committer is not None:
            self.committer.close()
        if self.write_lock is not None:
            self.write_lock.close()
        self.readers.close()
        self.engine.dispose()

    def ping(self) -> None:
        """One round trip to the database. Raises AuthorityUnavailable."""
        with self.transaction() as conn:
            conn.execute(text(_sql.PING))
