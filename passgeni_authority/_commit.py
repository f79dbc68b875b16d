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

Two ways in: :meth:`GroupCommitter.run` (any thread; the writer thread
commits) and :meth:`GroupCommitter.run_async` (the served app: on SQLite the
units run on the event loop's own thread, and the disk sync happens after the
write lock is released; see :class:`_LoopGroups`).

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
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import _hot, _sql

__all__ = ["GroupCommitter", "WriteLock"]

log = logging.getLogger("passgeni_authority")

T = TypeVar("T")

#: At most this many units share one transaction (bounds a group's latency).
MAX_GROUP = 256
#: Loop iterations a group may wait for more requests (see _LoopGroups._gather).
_GATHER_PASSES = 8


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
        self._loop_groups: _LoopGroups | None = None

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
        # Inserts the units defer (usage events) go in with one executemany
        # per statement just before the COMMIT (see _hot.defer).
        deferred: list[tuple[str, dict[str, Any]]] = []
        conn.info[_hot.DEFERRED] = deferred
        conn.info[_hot.GROUP_MEMO] = {}
        state = _hot.txn(conn)
        try:
            for unit in units:
                savepoint = _hot.Savepoint(conn)
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
                        if _is_conflict(exc):
                            failure = _Conflict(failure)
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
            if _is_conflict(exc) and attempt < _CONFLICT_RETRIES:
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
            if isinstance(raised, _Conflict) and attempt < _CONFLICT_RETRIES:
                again.append((unit, future))  # rolled back alone: run it again, alone
            elif isinstance(raised, _Conflict):
                future.set_exception(raised.error)
            elif raised is not None:
                future.set_exception(raised)
            else:
                future.set_result(value)
        for single in again:
            self._commit_group(conn, [single], attempt + 1)

    # -- on an event loop ------------------------------------------------------------

    async def run_async(self, unit: Callable[[Connection], T]) -> T:
        """:meth:`run` for a coroutine: the group commit of the running event loop.

        On SQLite the units of one loop's requests run *on the loop's thread*
        and only the lock wait and the ``COMMIT`` (its disk sync) go to a
        helper thread. A writer thread of its own would contend for the GIL
        with the busy loop on every SQLite call (each releases and retakes
        it), and each such call could wait for a whole GIL switch interval,
        many times the statement's own cost. Other loops than the first (tests with several clients)
        and PostgreSQL (whose statements are network round trips) use the
        writer thread.
        """
        loop = asyncio.get_running_loop()
        groups = self._loop_groups
        if groups is None and self._lock is not None and not self._closed:
            groups = self._loop_groups = _LoopGroups(self, loop)
        if groups is not None and groups.loop is loop:
            value: T = await groups.run(unit)
            return value
        return await asyncio.wrap_future(self.submit(unit))


class _LoopGroups:
    """The group commit of one event loop (see :meth:`GroupCommitter.run_async`).

    Durability without holding the lock through the disk sync: this
    connection commits with ``synchronous=NORMAL`` (in WAL mode: no sync at
    commit) and then, *after releasing the write lock*, syncs the WAL file
    itself before answering anyone. That is exactly what ``synchronous=FULL``
    adds to NORMAL ("an additional sync of the WAL file after each
    transaction commit", SQLite's documentation), moved out of the critical
    section: the other processes write their next group while this one's
    sync runs, and one sync covers every frame written before it. Frames
    that a checkpoint moves to the database file first were synced by the
    checkpoint itself (NORMAL syncs the WAL before and the database after
    every checkpoint).
    """

    def __init__(self, owner: GroupCommitter, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self._queue: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._conn: Connection | None = None
        database = owner._engine.url.database
        assert database is not None
        self._wal = f"{database}-wal"
        # Separate threads: a sync must never queue behind a wait for the lock.
        self._lock_waiter = ThreadPoolExecutor(1, thread_name_prefix="passgeni-lock")
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="passgeni-sync")
        self._pending: set[asyncio.Task[None]] = set()

    async def run(self, unit: Callable[[Connection], Any]) -> Any:
        future: asyncio.Future[Any] = self.loop.create_future()
        self._queue.append((unit, future))
        if self._task is None:
            self._task = self.loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            await self._gather()
            while self._queue:
                group = self._queue[:MAX_GROUP]
                del self._queue[:MAX_GROUP]
                try:
                    settled = await self._commit(group)
                except Exception as exc:
                    # Not the database: a bug. Fail the group loudly and keep
                    # draining (the queue behind it must not hang).
                    log.exception("unexpected error in a group commit")
                    if self._conn is not None:
                        with contextlib.suppress(Exception):
                            self._conn.rollback()
                            self._conn.close()
                        self._conn = None
                    for _unit, future in group:
                        _settle(future, None, exc)
                    continue
                if settled is not None:
                    # Answered after the sync; the next group is written meanwhile.
                    task = self.loop.create_task(self._answer_when_durable(group, *settled))
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)
        finally:
            self._task = None

    async def _gather(self) -> None:
        """Let the requests that are about to queue join this group first.

        A group is cut when the drain task first runs, which is often before
        the other requests of the same burst reached the queue: they are
        still in the loop's ready callbacks, or in socket buffers the next
        poll returns. Each commit costs about the same whatever its size
        (writing the WAL frames, a sync, the lock), so yielding to the loop
        while the queue keeps growing trades a little latency for fewer,
        larger commits, and less server CPU per certificate. A lone request
        waits one loop iteration.
        """
        size = -1
        for _ in range(_GATHER_PASSES):
            if len(self._queue) == size:
                return
            size = len(self._queue)
            await asyncio.sleep(0)

    def _connect(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            conn = self.owner._engine.connect()
            # On the driver, outside any transaction (SQLite refuses to change
            # the safety level inside one). Synced by _sync_wal instead.
            _hot.execute(conn, _sql.SQLITE_SYNC_NORMAL)
            self._conn = conn
        return self._conn

    async def _commit(
        self, group: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]]
    ) -> tuple[list[tuple[Any, BaseException | None]], _hot.TxnState] | None:
        """Write and commit ``group`` under the lock; its outcomes and what it
        decided in memory, or ``None`` when the group was settled here (failed,
        or retried unit by unit)."""
        owner = self.owner
        lock = owner._lock
        assert lock is not None
        if not lock.acquire(blocking=False):
            await self.loop.run_in_executor(self._lock_waiter, lock.acquire)
        conn: Connection | None = None
        try:
            conn = self._connect()
            transaction = conn.begin()
            _hot.begin_txn(conn)
            try:
                outcomes = owner._run_units(conn, [unit for unit, _future in group])
            finally:
                state = _hot.end_txn(conn)
            transaction.commit()  # no disk sync here (NORMAL): the sync comes after the lock
            return outcomes, state
        except owner._db_errors as exc:
            if conn is not None:
                owner._rolled_back(conn, exc)
            failure: Exception = exc
        finally:
            lock.release()
        if len(group) == 1:
            _settle(group[0][1], None, owner._on_db_error(failure))
            return None
        # One unit's conflict must not fail the others: each again, alone.
        for single in group:
            outcome = await self._commit([single])
            if outcome is not None:
                await self._answer_when_durable([single], *outcome)
        return None

    def _sync_wal(self) -> None:
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: everything was checkpointed, and checkpoints sync
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def _answer_when_durable(
        self,
        group: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]],
        outcomes: list[tuple[Any, BaseException | None]],
        state: _hot.TxnState,
    ) -> None:
        try:
            if self.owner._sync_in_loop:
                self._sync_wal()  # see AuthoritySettings.wal_sync_in_loop
            else:
                await self.loop.run_in_executor(self._syncer, self._sync_wal)
        except OSError as exc:
            # Committed but maybe not on disk: nobody is told it succeeded.
            log.error("cannot sync the database's WAL file: %s", exc.strerror or exc)
            error = self.owner._on_db_error(exc)
            for _unit, future in group:
                _settle(future, None, error)
            return
        # Durable: only now is anything decided inside it used, or answered.
        state.committed()
        for (_unit, future), (value, raised) in zip(group, outcomes, strict=True):
            _settle(future, value, raised)

    def close(self) -> None:
        self._lock_waiter.shutdown(wait=True)
        self._syncer.shutdown(wait=True)
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None


#: Times a unit that lost a lock conflict (a deadlock between two processes'
#: transactions, a serialization failure) runs again, alone, before its caller
#: is told the database failed.
_CONFLICT_RETRIES = 3
#: SQLSTATEs of a transaction the server aborted to resolve a conflict:
#: retrying it is the documented remedy (PostgreSQL: deadlock_detected,
#: serialization_failure).
_CONFLICT_STATES = frozenset({"40P01", "40001"})


class _Conflict(Exception):
    """A unit's lock conflict (internal): its error, once retries are used up."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _is_conflict(exc: BaseException) -> bool:
    # SQLAlchemy wraps the driver's error (.orig); the hot path raises it bare.
    driver_error = getattr(exc, "orig", None) or exc
    return getattr(driver_error, "sqlstate", None) in _CONFLICT_STATES


def _settle(future: asyncio.Future[Any], value: Any, raised: BaseException | None) -> None:
    if isinstance(raised, _Conflict):
        raised = raised.error  # SQLite's write lock rules conflicts out; kept for safety
    if future.done():  # the request was cancelled meanwhile (client gone)
        return
    if raised is not None:
        future.set_exception(raised)
    else:
        future.set_result(value)
