"""Rate limits whose state lives in the database, so every process shares it.

Two primitives, each a single atomic statement (``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``, on SQLite >= 3.35 and PostgreSQL alike):

* a fixed-window counter ("10 per IP per hour", "60 per user per minute");
* GCRA, the token bucket stated as one timestamp per key ("burst of 5, then
  1 per second"): the theoretical arrival time ``tat`` advances by one
  emission interval per admitted request; a request is admitted while
  ``max(tat, now) + T - now <= burst * T``.

Both return ``None`` (admitted) or the seconds until a retry can succeed.

Fast buckets (automation keys doing bulk rotation) would otherwise cost a
write on the shared row for every request, serialising every process on it.
For them a process *leases* a block of tokens in one statement and admits
from the block in memory (:class:`Leases`): the database counted the whole
block when it was leased, so the process can never admit more than the
shared limit allows. The unused tokens of a lapsed lease go back to the
database with the process's next lease of that bucket (in the same
statement), so a key is charged for what it used; if that never happens
(the process stops) they stay counted, which only errs on the strict side. A block becomes usable by the process only
once the transaction that leased it has committed. Leases last at most :data:`LEASE_SECONDS`
and hold at most a quarter of the burst, and a bucket too slow to lease two
tokens in that time (the per-user defaults: 1 per second, 60 per minute) is
charged per request exactly as before.
"""

from __future__ import annotations

import math
import threading

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from . import _hot
from ._db import rate_limit_buckets as buckets

__all__ = [
    "LEASE_SECONDS",
    "Leases",
    "gcra",
    "leased_gcra",
    "leased_window",
    "purge_expired",
    "retry_after_header",
    "take_leased",
    "window",
]

#: A leased block of tokens is used within this time or forfeited.
LEASE_SECONDS = 0.25


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
# A window lease: the block is counted only if all of it fits under the limit
# (a refused lease must not use up the window for single requests); :ret
# hands back the unused tokens of this process's lapsed lease of the window.
_WINDOW_LEASE_SQL = (
    "INSERT INTO rate_limit_buckets (bucket, value, expires_at) VALUES (:bucket, :step, :end) "
    "ON CONFLICT (bucket) DO UPDATE SET value = rate_limit_buckets.value + :step - :ret "
    "WHERE rate_limit_buckets.value + :step - :ret <= :limit "
    "RETURNING value"
)
# A GCRA lease handing back :ret seconds of a lapsed lease first: the TAT moves
# back by the unused tokens, never before now (a bucket is never more than full).
_RETURNED = f"(CASE WHEN {_BASE} - :ret > :now THEN {_BASE} - :ret ELSE :now END)"
_GCRA_LEASE_SQL = (
    "INSERT INTO rate_limit_buckets (bucket, value, expires_at) "  # noqa: S608
    "VALUES (:bucket, :now + :step, :now + :tol) "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_RETURNED} + :step, "
    f"expires_at = {_RETURNED} + :step "
    f"WHERE {_RETURNED} + :step - :now <= :tol "
    "RETURNING value"
)


#: Unused tokens remembered for return at most this many buckets (a bound on memory).
_MAX_RETURNS = 1024


class Leases:
    """Tokens this process has leased from shared buckets (thread-safe).

    ``take`` admits one request from a live lease; ``grant`` records a
    committed block. The tokens a lease leaves unused when it lapses are
    kept (``unused``) and handed back to the database with the next lease
    of the same bucket, so a key is charged for what it used, not for every
    block it leased.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, float]] = {}
        self._returns: dict[str, int] = {}

    def take(self, bucket: str, now: float) -> bool:
        with self._lock:
            held = self._held.get(bucket)
            if held is None:
                return False
            left, until = held
            if left <= 0 or now >= until:
                del self._held[bucket]
                if left > 0:
                    # Lapsed: nobody can use these any more; return them later.
                    if len(self._returns) >= _MAX_RETURNS:
                        self._returns.clear()  # forgetting a return only errs strict
                    self._returns[bucket] = self._returns.get(bucket, 0) + left
                return False
            self._held[bucket] = (left - 1, until)
            return True

    def unused(self, bucket: str) -> int:
        """Take the lapsed, unused tokens of ``bucket`` (to return them)."""
        with self._lock:
            return self._returns.pop(bucket, 0)

    def keep_unused(self, bucket: str, tokens: int) -> None:
        """Put back tokens :meth:`unused` gave out that could not be returned."""
        if tokens > 0:
            with self._lock:
                self._returns[bucket] = self._returns.get(bucket, 0) + tokens

    def grant(self, bucket: str, tokens: int, until: float) -> None:
        with self._lock:
            self._held[bucket] = (tokens, until)


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


def _take_pending(conn: Connection, bucket: str, now: float) -> bool:
    """One token from a block leased earlier in this same transaction."""
    pending = _hot.txn(conn).leases
    held = pending.get(bucket)
    if held is None or held[0] <= 0 or now >= held[1]:
        return False
    pending[bucket] = (held[0] - 1, held[1])
    return True


def _lease(conn: Connection, leases: Leases, bucket: str, tokens: int, until: float) -> None:
    """Record a block leased in this transaction; usable by the process once committed."""
    state = _hot.txn(conn)
    state.leases[bucket] = (tokens, until)

    def activate() -> None:
        # What this transaction left of the block (read at commit time).
        left = state.leases.get(bucket)
        if left is not None:
            leases.grant(bucket, left[0], left[1])

    state.after.append(activate)


def leased_gcra(
    conn: Connection,
    leases: Leases,
    name: str,
    burst: int,
    rate: float,
    now: float,
) -> float | None:
    """:func:`gcra` for one request, from a lease when the bucket is fast enough.

    A block leased here serves the rest of this transaction at once, and the
    rest of the process only after the transaction committed (see
    :class:`~passgeni_authority._hot.TxnState`).
    """
    size = int(min(burst / 4, rate * LEASE_SECONDS))
    if size < 2:
        return gcra(conn, name, burst, rate, now)
    bucket = f"g:{name}"
    if leases.take(bucket, now) or _take_pending(conn, bucket, now):
        return None
    interval = 1.0 / rate
    unused = leases.unused(bucket)
    params = {
        "bucket": bucket,
        "now": now,
        "step": size * interval,
        "tol": burst * interval,
        "ret": unused * interval,
    }
    if _hot.execute(conn, _GCRA_LEASE_SQL, params).fetchone() is not None:
        _lease(conn, leases, bucket, size - 1, now + LEASE_SECONDS)
        return None
    leases.keep_unused(bucket, unused)
    # Not a whole block left: this request alone, charged exactly.
    return gcra(conn, name, burst, rate, now)


def leased_window(
    conn: Connection,
    leases: Leases,
    name: str,
    limit: int,
    period: float,
    now: float,
) -> float | None:
    """:func:`window` for one request, from a lease when the limit is high enough.

    A lease never outlives its window (its tokens count in the window they
    were leased in).
    """
    size = int(min(limit / 4, limit / period * LEASE_SECONDS))
    if size < 2:
        return window(conn, name, limit, period, now)
    start = math.floor(now / period) * period
    end = start + period
    bucket = f"w:{name}:{int(start)}"
    if leases.take(bucket, now) or _take_pending(conn, bucket, now):
        return None
    unused = leases.unused(bucket)
    params = {
        "bucket": bucket,
        "step": float(size),
        "end": end,
        "limit": float(limit),
        "ret": float(unused),
    }
    if _hot.execute(conn, _WINDOW_LEASE_SQL, params).fetchone() is not None:
        _lease(conn, leases, bucket, size - 1, min(now + LEASE_SECONDS, end))
        return None
    leases.keep_unused(bucket, unused)
    return window(conn, name, limit, period, now)


def take_leased(leases: Leases, name: str, now: float, *, period: float | None = None) -> bool:
    """Admit one request of ``name`` from a live lease only (no database):
    the GCRA bucket, or with ``period`` the current window of that length."""
    if period is None:
        return leases.take(f"g:{name}", now)
    return leases.take(f"w:{name}:{int(math.floor(now / period) * period)}", now)


def purge_expired(conn: Connection, now: float) -> None:
    """Forget windows and buckets that can no longer limit anything."""
    conn.execute(delete(buckets).where(buckets.c.expires_at < now - 1))


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is whole seconds: round up so a client that obeys it succeeds."""
    return str(max(1, math.ceil(seconds)))
