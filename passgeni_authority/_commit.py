"""Group commit for SQLite: many requests' writes, one transaction, one disk sync.

With ``synchronous=FULL`` every SQLite commit waits for the disk (an
``fsync``), and SQLite admits one writer at a time, so one commit per
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
What the units decided in memory (``_hot.TxnState``: leased rate-limit
tokens, "this row is stored") takes effect only then, too.

One way in: :meth:`GroupCommitter.run`, a coroutine (on SQLite the units of
the served app's loop run on that loop's own thread, and the disk sync
happens after the write lock is released: see :mod:`._loopcommit`; other
loops and PostgreSQL hand their units to the writer thread).

:class:`WriteLock` serialises writers on one SQLite file: a thread lock within
the process plus ``flock`` on a file beside the database across processes
(every process sharing a SQLite file is on this host). A blocked ``flock``
wakes the moment the holder releases it, unlike SQLite's busy handler, which
polls with sleeps of up to 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import _hot, _savepoints
from ._loopcommit import LoopGroups

__all__ = ["MAX_GROUP", "Conflict", "GroupCommitter", "WriteLock", "is_conflict"]

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

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock; with ``blocking=False`` only if that needs no wait."""
        if not self._thread_lock.acquire(blocking):
            return False
        try:
            fcntl.flock(
                self._descriptor(), fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
            )
        except BlockingIOError:
            self._thread_lock.release()
            return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        """Release the lock (from any thread of the process that holds it)."""
        try:
            fcntl.flock(self._descriptor(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

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
        sync_in_loop: bool = False,
    ) -> None:
        self._engine = engine
        _savepoints.watch_savepoints(engine)
        self._sync_in_loop = sync_in_loop
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
        self._loop_groups: LoopGroups | None = None
        self.max_group = MAX_GROUP
        #: Called with the number of units of every group run (metrics).
        self.observe_group: Callable[[int], None] | None = None

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
        if self._loop_groups is not None:
            self._loop_groups.close()

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
                try:
                    self._commit_group(conn, group)
                except Exception:
                    # Not the database: a bug. The group was failed loudly;
                    # the writer keeps serving (a dead writer would hang
                    # every later request) on a fresh connection.
                    log.exception("unexpected error in a group commit")
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
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

    def _run_units(
        self, conn: Connection, units: Sequence[Callable[[Connection], Any]]
    ) -> list[tuple[Any, BaseException | None]]:
        """Run ``units`` in ``conn``'s open transaction, each in its own savepoint.

        Returns ``(value, None)`` or ``(None, error)`` per unit; a unit's
        failure rolls back that unit alone. Raises a database error when the
        group itself fails (a savepoint or the deferred inserts).
        """
        outcomes: list[tuple[Any, BaseException | None]] = []
        if self.observe_group is not None:
            self.observe_group(len(units))
        # Inserts the units defer (usage events) go in with one executemany
        # per statement just before the COMMIT (see _hot.defer).
        deferred: list[tuple[_hot.Deferred, dict[str, Any]]] = []
        conn.info[_hot.DEFERRED] = deferred
        conn.info[_hot.GROUP_MEMO] = {}
        state = _hot.txn(conn)
        try:
            for unit in units:
                savepoint = _savepoints.Savepoint(conn)
                mark = len(deferred)
                decided = state.mark()
                try:
                    value = unit(conn)
                except Exception as exc:  # the unit's own failure: only it rolls back
                    del deferred[mark:]
                    state.restore(decided)
                    savepoint.rollback()
                    failure: BaseException = exc
                    if isinstance(exc, self._db_errors):
                        log.warning("database error: %s", type(exc).__name__)
                        failure = self._on_db_error(exc)
                        if is_conflict(exc):
                            failure = Conflict(failure)
                    outcomes.append((None, failure))
                else:
                    savepoint.release()
                    outcomes.append((value, None))
        finally:
            conn.info.pop(_hot.DEFERRED, None)
            conn.info.pop(_hot.GROUP_MEMO, None)
        _hot.flush(conn, deferred)
        return outcomes

    def _rolled_back(self, conn: Connection, exc: Exception) -> None:
        # The COMMIT (or BEGIN, or the group's own SQL) failed: nothing of the group is durable.
        log.warning("database error in a group commit: %s", type(exc).__name__)
        with contextlib.suppress(*self._db_errors):
            conn.rollback()
        if self._on_rollback is not None:
            self._on_rollback()

    def _commit_group(
        self,
        conn: Connection,
        group: list[tuple[Callable[[Connection], Any], Future[Any]]],
        attempt: int = 0,
    ) -> None:
        try:
            held = self._lock.held() if self._lock is not None else contextlib.nullcontext()
            with held, conn.begin():
                _hot.begin_txn(conn)
                try:
                    outcomes = self._run_units(conn, [unit for unit, _future in group])
                finally:
                    state = _hot.end_txn(conn)
        except self._db_errors as exc:
            self._rolled_back(conn, exc)
            if len(group) > 1:
                # One unit's conflict (e.g. a PostgreSQL deadlock between two
                # processes' groups) must not fail the others: each again, alone.
                for single in group:
                    self._commit_group(conn, [single])
                return
            if is_conflict(exc) and attempt < CONFLICT_RETRIES:
                self._commit_group(conn, group, attempt + 1)
                return
            error = self._on_db_error(exc)
            for _unit, future in group:
                future.set_exception(error)
            return
        except BaseException as exc:  # a bug: fail the group loudly
            with contextlib.suppress(Exception):
                conn.rollback()
            for _unit, future in group:
                if not future.done():
                    future.set_exception(exc)
            raise
        # Committed: only now is anything decided inside it used, or answered.
        state.committed()
        again: list[tuple[Callable[[Connection], Any], Future[Any]]] = []
        for (unit, future), (value, raised) in zip(group, outcomes, strict=True):
            if isinstance(raised, Conflict) and attempt < CONFLICT_RETRIES:
                again.append((unit, future))  # rolled back alone: run it again, alone
            elif isinstance(raised, Conflict):
                future.set_exception(raised.error)
            elif raised is not None:
                future.set_exception(raised)
            else:
                future.set_result(value)
        for single in again:
            self._commit_group(conn, [single], attempt + 1)

    # -- on an event loop ------------------------------------------------------------

    async def run(self, unit: Callable[[Connection], T]) -> T:
        """Run ``unit`` in the group commit of the running event loop; its result
        (or its exception) once the group is committed.

        On SQLite the units of one loop's requests run *on the loop's thread*
        and only the lock wait and the ``COMMIT`` (its disk sync) go to a
        helper thread. A writer thread of its own would contend for the GIL
        with the busy loop on every SQLite call (each releases and retakes
        it), and each such call could wait for a whole GIL switch interval,
        many times the statement's own cost. Other loops than the first
        (tests with several clients) and PostgreSQL (whose statements are
        network round trips) use the writer thread (:meth:`submit`).
        """
        loop = asyncio.get_running_loop()
        groups = self._loop_groups
        if groups is None and self._lock is not None and not self._closed:
            groups = self._loop_groups = LoopGroups(self, loop)
        if groups is not None and groups.loop is loop:
            value: T = await groups.run(unit)
            return value
        return await asyncio.wrap_future(self.submit(unit))


#: Times a unit that lost a lock conflict (a deadlock between two processes'
#: transactions, a serialization failure) runs again, alone, before its caller
#: is told the database failed.
CONFLICT_RETRIES = 3
#: SQLSTATEs of a transaction the server aborted to resolve a conflict:
#: retrying it is the documented remedy (PostgreSQL: deadlock_detected,
#: serialization_failure).
CONFLICT_STATES = frozenset({"40P01", "40001"})


class Conflict(Exception):
    """A unit's lock conflict (internal): its error, once retries are used up."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def is_conflict(exc: BaseException) -> bool:
    # SQLAlchemy wraps the driver's error (.orig); the hot path raises it bare.
    driver_error = getattr(exc, "orig", None) or exc
    return getattr(driver_error, "sqlstate", None) in CONFLICT_STATES
