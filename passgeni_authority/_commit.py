"""Group commit for SQLite: many requests' writes, one transaction, one disk sync.

With ``synchronous=FULL`` every SQLite commit waits for the disk (a ~1-2 ms
``fsync`` here), and SQLite admits one writer at a time, so one commit per
request caps a process at a few hundred writes per second however many
requests are in flight. :class:`GroupCommitter` keeps the durability and lifts
the cap: request threads hand it a *unit* (a function of a connection); one
writer thread takes every unit queued so far, runs each inside its own
``SAVEPOINT`` (a failing unit rolls back alone), commits them all with a
single ``COMMIT`` (one sync), and only then answers each request. While that
sync runs, the next group queues up, so the number of syncs per second stays
the same and the writes per sync grow with the load.

Nothing is answered before its commit: a unit's result (e.g. a certificate
id) is handed back only after the ``COMMIT`` returned; if the commit fails,
every unit of the group gets :class:`~passgeni_core.AuthorityUnavailable`.

:class:`WriteLock` serialises writers on one SQLite file: a thread lock within
the process plus ``flock`` on a file beside the database across processes
(every process sharing a SQLite file is on this host). A blocked ``flock``
wakes the moment the holder releases it, unlike SQLite's busy handler, which
polls with sleeps of up to 100 ms.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import _hot

__all__ = ["GroupCommitter", "WriteLock"]

log = logging.getLogger("passgeni_authority")

T = TypeVar("T")

#: At most this many units share one transaction (bounds a group's latency).
MAX_GROUP = 256


class WriteLock:
    """One writer at a time on a SQLite file, within and across processes."""

    def __init__(self, database: str) -> None:
        self._path = f"{database}.write-lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = -1

    def _descriptor(self) -> int:
        # A forked child must not share its parent's open file description
        # (flock would then treat both processes as one holder).
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


class GroupCommitter:
    """A writer thread that commits the units of concurrent requests together.

    ``run(unit)`` blocks until the group holding ``unit`` is committed and
    returns the unit's result (or raises its exception). ``on_db_error``
    turns a failed commit into the exception every waiter of the group gets;
    ``on_rollback`` is called whenever a group's transaction is rolled back
    (before its units are retried one by one), so that state the units built
    in memory from uncommitted writes can be dropped.
    Units must not call :meth:`run` themselves.
    """

    def __init__(
        self,
        engine: Engine,
        lock: WriteLock | None,
        on_db_error: Callable[[Exception], BaseException],
        *,
        on_rollback: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        # SQLAlchemy's errors and the driver's own (the hot path runs on the driver).
        self._db_errors: tuple[type[Exception], ...] = (
            SQLAlchemyError,
            engine.dialect.loaded_dbapi.Error,
        )
        self._lock = lock
        self._on_db_error = on_db_error
        self._on_rollback = on_rollback
        self._queue: list[tuple[Callable[[Connection], Any], Future[Any]]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def run(self, unit: Callable[[Connection], T]) -> T:
        return self.submit(unit).result()

    def submit(self, unit: Callable[[Connection], T]) -> Future[T]:
        """Queue ``unit``; the future completes after the commit of its group."""
        future: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the authority is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="passgeni-group-commit", daemon=True
                )
                self._thread.start()
            self._queue.append((unit, future))
            self._cond.notify()
        return future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _loop(self) -> None:
        conn: Connection | None = None
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if not self._queue:
                        return
                    group = self._queue[:MAX_GROUP]
                    del self._queue[:MAX_GROUP]
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._connect(group)
                    if conn is None:
                        continue
                self._commit_group(conn, group)
        finally:
            if conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    conn.close()

    def _connect(self, group: list[tuple[Callable[[Connection], Any], Future[Any]]]) -> Any:
        try:
            return self._engine.connect()
        except self._db_errors as exc:
            error = self._on_db_error(exc)
            for _unit, future in group:
                future.set_exception(error)
            return None

    def _commit_group(
        self, conn: Connection, group: list[tuple[Callable[[Connection], Any], Future[Any]]]
    ) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        # Inserts the units defer (usage events) go in with one executemany
        # per statement just before the COMMIT (see _hot.defer).
        deferred: list[tuple[str, dict[str, Any]]] = []
        try:
            held = self._lock.held() if self._lock is not None else contextlib.nullcontext()
            with held, conn.begin():
                conn.info[_hot.DEFERRED] = deferred
                conn.info[_hot.GROUP_MEMO] = {}
                for unit, future in group:
                    savepoint = _hot.Savepoint(conn)
                    mark = len(deferred)
                    try:
                        value = unit(conn)
                    except Exception as exc:  # the unit's own failure: only it rolls back
                        del deferred[mark:]
                        savepoint.rollback()
                        failure: BaseException = exc
                        if isinstance(exc, self._db_errors):
                            log.warning("database error: %s", type(exc).__name__)
                            failure = self._on_db_error(exc)
                        outcomes.append((future, None, failure))
                    else:
                        savepoint.release()
                        outcomes.append((future, value, None))
                conn.info.pop(_hot.DEFERRED, None)
                conn.info.pop(_hot.GROUP_MEMO, None)
                _hot.flush(conn, deferred)
        except self._db_errors as exc:
            # The COMMIT (or BEGIN) failed: nothing of this group is durable.
            log.warning("database error in a group commit: %s", type(exc).__name__)
            conn.info.pop(_hot.DEFERRED, None)
            conn.info.pop(_hot.GROUP_MEMO, None)
            with contextlib.suppress(*self._db_errors):
                conn.rollback()
            if self._on_rollback is not None:
                self._on_rollback()
            if len(group) > 1:
                # One unit's conflict (e.g. a PostgreSQL deadlock between two
                # processes' groups) must not fail the others: each again, alone.
                for single in group:
                    self._commit_group(conn, [single])
                return
            error = self._on_db_error(exc)
            for _unit, future in group:
                future.set_exception(error)
            return
        except BaseException as exc:  # pragma: no cover - a bug: fail the group loudly
            conn.info.pop(_hot.DEFERRED, None)
            conn.info.pop(_hot.GROUP_MEMO, None)
            for _unit, future in group:
                if not future.done():
                    future.set_exception(exc)
            raise
        # Committed: only now does any request learn its result.
        for future, value, raised in outcomes:
            if raised is not None:
                future.set_exception(raised)
            else:
                future.set_result(value)
