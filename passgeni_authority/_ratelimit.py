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

import math

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from . import _hot
from ._db import rate_limit_buckets as buckets

__all__ = ["gcra", "purge_expired", "retry_after_header", "window"]


# Plain SQL both SQLite (>= 3.35) and PostgreSQL accept, run on the driver
# connection (see _hot): these two statements run on every authenticated request.
_WINDOW_SQL = (
    "INSERT INTO rate_limit_buckets (bucket, value, expires_at) VALUES (:bucket, :step, :end) "
    "ON CONFLICT (bucket) DO UPDATE SET value = rate_limit_buckets.value + :step "
    "RETURNING value"
)
# A stored TAT never exceeds now + tolerance in normal operation; one that
# does means the clock went backwards (NTP step, restored VM, test clock):
# restart the bucket instead of locking the caller out for the jump.
_BASE = (
    "(CASE WHEN rate_limit_buckets.value > :now + :tol THEN :now "
    "WHEN rate_limit_buckets.value > :now THEN rate_limit_buckets.value ELSE :now END)"
)
# Constant SQL (the f-strings only repeat _BASE); every value is bound.
_GCRA_SQL = (
    "INSERT INTO rate_limit_buckets (bucket, value, expires_at) "  # noqa: S608
    "VALUES (:bucket, :now + :step, :now + :tol) "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_BASE} + :step, expires_at = {_BASE} + :step "
    f"WHERE {_BASE} + :step - :now <= :tol "
    "RETURNING value"
)
_TAT_SQL = "SELECT value FROM rate_limit_buckets WHERE bucket = :bucket"


def window(
    conn: Connection, name: str, limit: int, period: float, now: float, *, amount: int = 1
) -> float | None:
    """Count ``amount`` events in the current ``period``-second window of ``name``."""
    start = math.floor(now / period) * period
    end = start + period
    params = {"bucket": f"w:{name}:{int(start)}", "step": float(amount), "end": end}
    count = _hot.execute(conn, _WINDOW_SQL, params).fetchone()[0]
    if count <= limit:
        return None
    return max(end - now, 0.001)


def gcra(conn: Connection, name: str, burst: int, rate: float, now: float) -> float | None:
    """Admit one request of ``name`` if the bucket allows it (GCRA)."""
    interval = 1.0 / rate
    tolerance = burst * interval
    params = {"bucket": f"g:{name}", "now": now, "step": interval, "tol": tolerance}
    if _hot.execute(conn, _GCRA_SQL, params).fetchone() is not None:
        return None
    tat = float(_hot.execute(conn, _TAT_SQL, {"bucket": f"g:{name}"}).fetchone()[0])
    return max(tat + interval - tolerance - now, 0.001)


def purge_expired(conn: Connection, now: float) -> None:
    """Forget windows and buckets that can no longer limit anything."""
    conn.execute(delete(buckets).where(buckets.c.expires_at < now - 1))


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is whole seconds: round up so a client that obeys it succeeds."""
    return str(max(1, math.ceil(seconds)))
