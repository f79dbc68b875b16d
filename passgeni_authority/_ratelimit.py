"""Rate limits whose state lives in the database, so every process shares it.

Two primitives, each a single atomic statement (``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``, on SQLite >= 3.35 and PostgreSQL alike):

* a fixed-window counter ("10 per IP per hour", "60 per user per minute");
* GCRA, the token bucket stated as one timestamp per key ("burst of 5, then
  1 per second"): the theoretical arrival time ``tat`` advances by one
  emission interval per admitted request; a request is admitted while
  ``max(tat, now) + T - now <= burst * T``.

Both return ``None`` (admitted) or the seconds until a retry can succeed.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from sqlalchemy import Float, bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ._db import rate_limit_buckets as buckets

__all__ = ["gcra", "purge_expired", "retry_after_header", "window"]


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(buckets)
    if dialect == "sqlite":
        return sqlite.insert(buckets)
    raise NotImplementedError(f"rate limits need SQLite or PostgreSQL, not {dialect}")


_NOW = bindparam("now", type_=Float)
_STEP = bindparam("step", type_=Float)
_TOL = bindparam("tol", type_=Float)


@functools.cache
def _statements(dialect: str) -> tuple[Any, Any, Any]:
    """The window and GCRA upserts, built once per dialect (bound values only):
    the hot path then skips statement construction and SQL compilation."""
    window_stmt = (
        _insert(dialect)
        .values(bucket=bindparam("bucket"), value=_STEP, expires_at=bindparam("end", type_=Float))
        .on_conflict_do_update(
            index_elements=[buckets.c.bucket], set_={"value": buckets.c.value + _STEP}
        )
        .returning(buckets.c.value)
    )
    # A stored TAT never exceeds now + tolerance in normal operation; one that
    # does means the clock went backwards (NTP step, restored VM, test clock):
    # restart the bucket instead of locking the caller out for the jump.
    base = case(
        (buckets.c.value > _NOW + _TOL, _NOW),
        (buckets.c.value > _NOW, buckets.c.value),
        else_=_NOW,
    )
    gcra_stmt = (
        _insert(dialect)
        .values(bucket=bindparam("bucket"), value=_NOW + _STEP, expires_at=_NOW + _TOL)
        .on_conflict_do_update(
            index_elements=[buckets.c.bucket],
            set_={"value": base + _STEP, "expires_at": base + _STEP},
            where=(base + _STEP - _NOW) <= _TOL,
        )
        .returning(buckets.c.value)
    )
    tat_stmt = select(buckets.c.value).where(buckets.c.bucket == bindparam("bucket"))
    return window_stmt, gcra_stmt, tat_stmt


def window(
    conn: Connection, name: str, limit: int, period: float, now: float, *, amount: int = 1
) -> float | None:
    """Count ``amount`` events in the current ``period``-second window of ``name``."""
    start = math.floor(now / period) * period
    end = start + period
    stmt = _statements(conn.dialect.name)[0]
    count = conn.execute(
        stmt, {"bucket": f"w:{name}:{int(start)}", "step": float(amount), "end": end}
    ).scalar_one()
    if count <= limit:
        return None
    return max(end - now, 0.001)


def gcra(conn: Connection, name: str, burst: int, rate: float, now: float) -> float | None:
    """Admit one request of ``name`` if the bucket allows it (GCRA)."""
    interval = 1.0 / rate
    tolerance = burst * interval
    _window, stmt, tat_stmt = _statements(conn.dialect.name)
    params = {"bucket": f"g:{name}", "now": now, "step": interval, "tol": tolerance}
    if conn.execute(stmt, params).first() is not None:
        return None
    tat = float(conn.execute(tat_stmt, {"bucket": f"g:{name}"}).scalar_one())
    return max(tat + interval - tolerance - now, 0.001)


def purge_expired(conn: Connection, now: float) -> None:
    """Forget windows and buckets that can no longer limit anything."""
    conn.execute(delete(buckets).where(buckets.c.expires_at < now - 1))


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is whole seconds: round up so a client that obeys it succeeds."""
    return str(max(1, math.ceil(seconds)))
