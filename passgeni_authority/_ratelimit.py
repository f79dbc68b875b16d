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

from passgeni_core import RateLimited

from . import _hot, _sql
from ._db import rate_limit_buckets as buckets
from ._models import Principal
from ._settings import RateLimits

__all__ = [
    "LEASE_SECONDS",
    "Leases",
    "RateLimiter",
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
    count = _hot.execute(conn, _sql.WINDOW, params).fetchone()[0]
    if count <= limit:
        return None
    return max(end - now, 0.001)


def gcra(conn: Connection, name: str, burst: int, rate: float, now: float) -> float | None:
    """Admit one request of ``name`` if the bucket allows it (GCRA)."""
    interval = 1.0 / rate
    tolerance = burst * interval
    params = {"bucket": f"g:{name}", "now": now, "step": interval, "tol": tolerance}
    if _hot.execute(conn, _sql.GCRA, params).fetchone() is not None:
        return None
    tat = float(_hot.execute(conn, _sql.TAT, {"bucket": f"g:{name}"}).fetchone()[0])
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
    if _hot.execute(conn, _sql.GCRA_LEASE, params).fetchone() is not None:
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
    if _hot.execute(conn, _sql.WINDOW_LEASE, params).fetchone() is not None:
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


class RateLimiter:
    """The limits of each caller, applied in the request's transaction.

    A key with its own rate (an automation key) has its own bucket, with a
    burst as large as a minute's worth; every other key shares its user's
    bucket and the published defaults. Generation attempts of keys without
    their own rate also count per client IP and hour.
    """

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        # Tokens leased by this process (see Leases).
        self.leases = Leases()
        self._purge_counter = 0

    def of(self, principal: Principal) -> tuple[str, int | None, int | None, float]:
        """``(bucket, per minute, burst, refill per second)`` of a caller."""
        limits = self.limits
        if principal.rate_limit is not None:
            return (
                f"key:{principal.key_prefix}",
                principal.rate_limit,
                principal.rate_limit,
                max(limits.refill_per_second, principal.rate_limit / 60.0),
            )
        return (
            f"user:{principal.user_id}",
            limits.user_per_minute,
            limits.burst,
            limits.refill_per_second,
        )

    def admit(self, conn: Connection, principal: Principal, now: float) -> float | None:
        """Charge one request to the caller's limits in ``conn``; ``None``
        (admitted) or the seconds until a retry can succeed."""
        bucket, per_minute, burst, rate = self.of(principal)
        retry: float | None = None
        if burst is not None:
            retry = leased_gcra(conn, self.leases, bucket, burst, rate, now)
        if retry is None and per_minute is not None:
            retry = leased_window(conn, self.leases, bucket, per_minute, 60.0, now)
        self._purge_counter += 1
        if self._purge_counter % 500 == 0:
            purge_expired(conn, now)
        return retry

    def admit_from_leases(self, principal: Principal, now: float) -> bool:
        """Admit one request from this process's committed leases alone (no write),
        or ``False``: then the request is charged by :meth:`admit`."""
        bucket, per_minute, burst, _rate = self.of(principal)
        if burst is not None and not take_leased(self.leases, bucket, now):
            return False
        return per_minute is None or take_leased(self.leases, bucket, now, period=60.0)

    def generation(
        self, conn: Connection, principal: Principal, ip: str | None, attempts: int, now: float
    ) -> RateLimited | None:
        """Count ``attempts`` generation attempts of ``ip`` this hour (keys
        without their own rate only); the error when over the limit."""
        limit = self.limits.generation_per_ip_per_hour
        if not attempts or limit is None or principal.rate_limit is not None:
            return None
        retry = window(conn, f"gen-ip:{ip or 'unknown'}", limit, 3600.0, now, amount=attempts)
        if retry is None:
            return None
        return RateLimited(
            f"at most {limit} certificate generation attempts per IP address per hour; "
            f"retry in {retry_after_header(retry)} s",
            retry_after=retry,
        )

    @staticmethod
    def user_limited(principal: Principal, retry: float) -> RateLimited:
        return RateLimited(
            f"too many requests for user {principal.user_id}; retry in "
            f"{retry_after_header(retry)} s",
            retry_after=retry,
        )
