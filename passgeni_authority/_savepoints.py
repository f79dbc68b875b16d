"""A group commit unit's savepoint: taken lazily, released late (see :class:`Savepoint`).

The pending state lives in the connection's ``info`` (``_hot.PENDING_SAVEPOINT``,
``_hot.PENDING_RELEASE``); :func:`._hot.execute` and :func:`._hot.executemany`
send it before their statement, :func:`watch_savepoints` before SQLAlchemy's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from . import _hot, _sql
from ._hot import PENDING_RELEASE, PENDING_SAVEPOINT, take_savepoint

__all__ = ["Savepoint", "watch_savepoints"]


class Savepoint:
    """A unit's ``SAVEPOINT``, taken just before the unit's first statement.

    ``release`` / ``rollback`` then run ``RELEASE`` / ``ROLLBACK TO``; a unit
    that ran no statement at all needs neither and sends nothing. On
    PostgreSQL the ``RELEASE`` of a unit that succeeded waits for the next
    statement of the transaction and goes with it, the next unit's
    ``SAVEPOINT`` and its first statement in one round trip (or is dropped:
    ``COMMIT`` releases it). So a redemption's unit costs one round trip
    instead of three. A statement run through SQLAlchemy instead of
    ``_hot`` takes the savepoint too (see :func:`watch_savepoints`);
    :func:`._hot.end_txn` forgets what is pending.

    Every savepoint has the same name (see ``_sql.SAVEPOINT``): a name per
    savepoint would make every one of them new SQL, which the ``sqlite3``
    module compiles afresh and which evicts the hot statements from its
    statement cache.
    """

    __slots__ = ("_conn", "_info")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._info = conn.info
        self._info[PENDING_SAVEPOINT] = True

    def release(self) -> None:
        info = self._info
        if info.pop(PENDING_SAVEPOINT, False):
            return  # no statement ran: no savepoint to release
        if self._conn.dialect.name == "sqlite":
            _hot.execute(self._conn, _sql.RELEASE_SAVEPOINT)
        else:
            info[PENDING_RELEASE] = True

    def rollback(self) -> None:
        if self._info.pop(PENDING_SAVEPOINT, False):
            return  # no statement ran: nothing to undo
        _hot.execute(self._conn, _sql.ROLLBACK_TO_SAVEPOINT)
        _hot.execute(self._conn, _sql.RELEASE_SAVEPOINT)

    def __enter__(self) -> Savepoint:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.release()
        else:
            self.rollback()


def watch_savepoints(engine: Engine) -> None:
    """Take a pending :class:`Savepoint` before a statement SQLAlchemy runs on
    ``engine`` too (the units run some of theirs through it)."""

    def before(conn: Connection, *_args: Any) -> None:
        info = conn.info
        if PENDING_SAVEPOINT in info or PENDING_RELEASE in info:
            take_savepoint(info, conn.connection.driver_connection)

    event.listen(engine, "before_cursor_execute", before)
