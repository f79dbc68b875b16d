"""Group commit on an event loop's own thread (SQLite): see :class:`LoopGroups`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import _hot, _sql

if TYPE_CHECKING:
    from ._commit import GroupCommitter

__all__ = ["LoopGroups", "settle"]

log = logging.getLogger("passgeni_authority")

#: Loop iterations a group may wait for more requests (see LoopGroups._gather).
_GATHER_PASSES = 8


class LoopGroups:
    """The group commit of one event loop (see :meth:`GroupCommitter.run <._commit.GroupCommitter.run>`).

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
        #: The WAL file whose directory entry was synced (see _sync_wal).
        self._wal_inode: int | None = None
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
                group = self._queue[: self.owner.max_group]
                del self._queue[: self.owner.max_group]
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
                        settle(future, None, exc)
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
            settle(group[0][1], None, owner._on_db_error(failure))
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
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        if inode != self._wal_inode:
            # A WAL file new since the last sync (the first, or one re-created after
            # the last connection closed): its directory entry is not on disk until
            # the directory is synced, and a power cut would lose the file whole.
            # SQLite syncs it itself only under synchronous=FULL, which this
            # connection does not use (see the class docstring).
            dir_fd = os.open(os.path.dirname(self._wal) or ".", os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            self._wal_inode = inode

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
                settle(future, None, error)
            return
        # Durable: only now is anything decided inside it used, or answered.
        state.committed()
        for (_unit, future), (value, raised) in zip(group, outcomes, strict=True):
            settle(future, value, raised)

    def close(self) -> None:
        self._lock_waiter.shutdown(wait=True)
        self._syncer.shutdown(wait=True)
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None


def settle(future: asyncio.Future[Any], value: Any, raised: BaseException | None) -> None:
    """Answer one request of a group (unless it was cancelled meanwhile)."""
    if future.done():  # the request was cancelled meanwhile (client gone)
        return
    if raised is not None:
        future.set_exception(raised)
    else:
        future.set_result(value)
