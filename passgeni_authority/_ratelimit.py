"""Rate-limit primitives whose state lives in the database, so every process shares it.

Two primitives, each a single atomic statement (``INSERT ... ON CONFLICT DO
UPDATE ... WHERE ... RETURNING``, on SQLite >= 3.35 and PostgreSQL alike),
and each **conditional**: a request that does not fit is refused without
being counted, so a refused request costs the caller nothing.

* a sliding window ("10 per IP per hour", "60 per user per minute"): the
  count of the current fixed window plus the previous window's count
  weighted by how much of it the sliding window still covers
  (``prev * (1 - elapsed / period)``). No clock-hour boundary lets twice
  the limit through; the previous window is closed, so its count is read
  once per process and remembered (``closed``);
* GCRA, the token bucket stated as one timestamp per key ("burst of 5, then
  1 per second"): the theoretical arrival time ``tat`` advances by one
  emission interval per admitted request; a request is admitted while
  ``max(tat, now) + T - now <= burst * T``.

Each returns a :data:`Verdict`: ``None`` (admitted) or the seconds until a
retry can succeed (``math.inf``: never, the request alone is over the
limit), the quota left, the seconds until the quota is whole again, and the
:data:`Charge` that undoes the admission (:func:`refund`) when a later limit
of the same request refuses it: all in the request's transaction, so a
request refused by any of its limits is charged by none.

Fast buckets (automation keys doing bulk rotation) would otherwise cost a
write on the shared row for every request, serialising every process on it.
For them a process *leases* a block of tokens in one statement and admits
from the block in memory (:class:`Leases`): the database counted the whole
block when it was leased, so the process can never admit more than the
shared limit allows. The unused tokens of a lapsed lease go back to the
database with the process's next lease of that bucket (in the same
statement), so a key is charged for what it used; if that never happens
(the process stops) they stay counted, which only errs on the strict side.
A block becomes usable by the process only once the transaction that leased
it has committed. Leases last at most :data:`LEASE_SECONDS` and hold at most
a quarter of the limit, and a bucket too slow to lease two tokens in that
time (the per-user defaults: 1 per second, 60 per minute) is charged per
request.
"""

from __future__ import annotations

import math
import threading

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from . import _hot, _sql
from ._db import rate_limit_buckets as buckets

__all__ = [
    "LEASE_SECONDS",
    "Charge",
    "Leases",
    "Verdict",
    "gcra",
    "gcra_verdict",
    "leased_gcra",
    "leased_gcra_verdict",
    "leased_window",
    "leased_window_verdict",
    "purge_expired",
    "refund",
    "retry_after_header",
    "take_leased",
    "window",
    "window_verdict",
]

#: A leased block of tokens is used within this time or forfeited.
LEASE_SECONDS = 0.25

#: Unused tokens remembered for return at most this many buckets (a bound on memory).
_MAX_RETURNS = 1024
#: Closed windows' counts remembered at most this many (a bound on memory).
_MAX_CLOSED = 4096

#: How to undo one admission: ``(how, bucket, amount)``; ``how`` is ``"gcra"``,
#: ``"window"`` (database rows), ``"lease"`` (a committed lease of this process)
#: or ``"pending"`` (a block leased in the current transaction).
Charge = tuple[str, str, float]
#: ``(retry, remaining, reset, charge)``: ``retry`` is ``None`` when admitted.
Verdict = tuple[float | None, int, float, Charge | None]

#: A held lease: ``(tokens left, usable until, quota left in the database, full again at)``.
Held = tuple[int, float, int, float]


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
        self._held: dict[str, Held] = {}
        self._returns: dict[str, int] = {}

    def take_remaining(self, bucket: str, now: float) -> tuple[int, float] | None:
        """Admit one request from a live lease: ``(quota left, full again at)``, or ``None``."""
        with self._lock:
            held = self._held.get(bucket)
            if held is None:
                return None
            left, until, base, full_at = held
            if left <= 0 or now >= until:
                del self._held[bucket]
                if left > 0:
                    # Lapsed: nobody can use these any more; return them later.
                    if len(self._returns) >= _MAX_RETURNS:
                        self._returns.clear()  # forgetting a return only errs strict
                    self._returns[bucket] = self._returns.get(bucket, 0) + left
                return None
            self._held[bucket] = (left - 1, until, base, full_at)
            return base + left - 1, full_at

    def take(self, bucket: str, now: float) -> bool:
        return self.take_remaining(bucket, now) is not None

    def untake(self, bucket: str) -> None:
        """Give back one token :meth:`take` gave (the request was refused by another limit)."""
        with self._lock:
            held = self._held.get(bucket)
            if held is not None:
                self._held[bucket] = (held[0] + 1, *held[1:])
            else:
                self._returns[bucket] = self._returns.get(bucket, 0) + 1

    def unused(self, bucket: str) -> int:
        """Take the lapsed, unused tokens of ``bucket`` (to return them)."""
        with self._lock:
            return self._returns.pop(bucket, 0)

    def keep_unused(self, bucket: str, tokens: int) -> None:
        """Put back tokens :meth:`unused` gave out that could not be returned."""
        if tokens > 0:
            with self._lock:
                self._returns[bucket] = self._returns.get(bucket, 0) + tokens

    def grant(
        self, bucket: str, tokens: int, until: float, base: int = 0, full_at: float = 0.0
    ) -> None:
        with self._lock:
            self._held[bucket] = (tokens, until, base, full_at)


# -- sliding windows ---------------------------------------------------------------------


def _window_start(now: float, period: float) -> float:
    return math.floor(now / period) * period


def _previous(
    conn: Connection, name: str, start: float, period: float, closed: dict[str, float] | None
) -> float:
    """The count of the window before the one starting at ``start`` (closed: read once)."""
    bucket = f"w:{name}:{int(start - period)}"
    if closed is not None:
        seen = closed.get(bucket)
        if seen is not None:
            return seen
    row = _hot.execute(conn, _sql.BUCKET_VALUE, {"bucket": bucket}).fetchone()
    count = 0.0 if row is None else float(row[0])
    if closed is not None:
        if len(closed) >= _MAX_CLOSED:
            closed.clear()
        closed[bucket] = count
    return count


def _window_retry(
    limit: int, period: float, now: float, start: float, cur: float, prev: float, amount: float
) -> float:
    """Seconds until ``amount`` more fit in the sliding window (``inf``: never)."""
    if amount > limit:
        return math.inf
    end = start + period
    room = limit - cur - amount
    if room >= 0 and prev > 0:
        # Later in this window, as the previous one's weight shrinks.
        at = start + period * (1 - room / prev)
        if at < end:
            return max(at - now, 0.001)
    # In the next window, where this one is the previous one.
    at = end if cur <= 0 else end + period * max(0.0, 1 - (limit - amount) / cur)
    return max(at - now, 0.001)


def window_verdict(
    conn: Connection,
    name: str,
    limit: int,
    period: float,
    now: float,
    *,
    amount: int = 1,
    closed: dict[str, float] | None = None,
) -> Verdict:
    """Count ``amount`` events of ``name`` in its sliding ``period``-second window, if they fit."""
    start = _window_start(now, period)
    end = start + period
    bucket = f"w:{name}:{int(start)}"
    prev = _previous(conn, name, start, period, closed)
    cap = limit - prev * (1 - (now - start) / period)
    params = {"bucket": bucket, "step": float(amount), "end": end + period, "cap": cap, "ret": 0.0}
    row = _hot.execute(conn, _sql.WINDOW, params).fetchone()
    if row is not None:
        remaining = max(0, int(cap - float(row[0]) + 1e-9))
        return None, remaining, end - now, ("window", bucket, float(amount))
    current = _hot.execute(conn, _sql.BUCKET_VALUE, {"bucket": bucket}).fetchone()
    cur = 0.0 if current is None else float(current[0])
    return _window_retry(limit, period, now, start, cur, prev, amount), 0, end - now, None


def window(
    conn: Connection, name: str, limit: int, period: float, now: float, *, amount: int = 1
) -> float | None:
    """:func:`window_verdict`'s retry alone."""
    return window_verdict(conn, name, limit, period, now, amount=amount)[0]


# -- GCRA --------------------------------------------------------------------------------


def _gcra_left(tat: float, now: float, interval: float, tolerance: float) -> int:
    return max(0, int((tolerance - max(tat - now, 0.0)) / interval + 1e-9))


def gcra_verdict(conn: Connection, name: str, burst: int, rate: float, now: float) -> Verdict:
    """Admit one request of ``name`` if the bucket allows it (GCRA)."""
    interval = 1.0 / rate
    tolerance = burst * interval
    bucket = f"g:{name}"
    params = {"bucket": bucket, "now": now, "step": interval, "tol": tolerance}
    row = _hot.execute(conn, _sql.GCRA, params).fetchone()
    if row is not None:
        tat = float(row[0])
        left = _gcra_left(tat, now, interval, tolerance)
        return None, left, tat - now, ("gcra", bucket, interval)
    tat = float(_hot.execute(conn, _sql.BUCKET_VALUE, {"bucket": bucket}).fetchone()[0])
    return max(tat + interval - tolerance - now, 0.001), 0, max(tat - now, 0.0), None


def gcra(conn: Connection, name: str, burst: int, rate: float, now: float) -> float | None:
    """:func:`gcra_verdict`'s retry alone."""
    return gcra_verdict(conn, name, burst, rate, now)[0]


# -- leases ------------------------------------------------------------------------------


def _take_pending(conn: Connection, bucket: str, now: float) -> tuple[int, float] | None:
    """One token from a block leased earlier in this same transaction."""
    pending = _hot.txn(conn).leases
    held = pending.get(bucket)
    if held is None or held[0] <= 0 or now >= held[1]:
        return None
    pending[bucket] = (held[0] - 1, held[1], held[2], held[3])
    return held[2] + held[0] - 1, held[3]


def _lease(conn: Connection, leases: Leases, bucket: str, block: Held) -> None:
    """Record a block leased in this transaction; usable by the process once committed."""
    state = _hot.txn(conn)
    state.leases[bucket] = block

    def activate() -> None:
        # What this transaction left of the block (read at commit time).
        left = state.leases.get(bucket)
        if left is not None:
            leases.grant(bucket, *left)

    state.after.append(activate)


def _from_leases(conn: Connection, leases: Leases, bucket: str, now: float) -> Verdict | None:
    taken = leases.take_remaining(bucket, now)
    if taken is not None:
        return None, taken[0], max(taken[1] - now, 0.0), ("lease", bucket, 1.0)
    taken = _take_pending(conn, bucket, now)
    if taken is not None:
        return None, taken[0], max(taken[1] - now, 0.0), ("pending", bucket, 1.0)
    return None


def leased_gcra_verdict(
    conn: Connection, leases: Leases, name: str, burst: int, rate: float, now: float
) -> Verdict:
    """:func:`gcra_verdict` for one request, from a lease when the bucket is fast enough.

    A block leased here serves the rest of this transaction at once, and the
    rest of the process only after the transaction committed (see
    :class:`~passgeni_authority._hot.TxnState`).
    """
    size = int(min(burst / 4, rate * LEASE_SECONDS))
    if size < 2:
        return gcra_verdict(conn, name, burst, rate, now)
    bucket = f"g:{name}"
    held = _from_leases(conn, leases, bucket, now)
    if held is not None:
        return held
    interval = 1.0 / rate
    tolerance = burst * interval
    unused = leases.unused(bucket)
    params = {
        "bucket": bucket,
        "now": now,
        "step": size * interval,
        "tol": tolerance,
        "ret": unused * interval,
    }
    row = _hot.execute(conn, _sql.GCRA_LEASE, params).fetchone()
    if row is not None:
        tat = float(row[0])
        base = _gcra_left(tat, now, interval, tolerance)
        _lease(conn, leases, bucket, (size - 1, now + LEASE_SECONDS, base, tat))
        return None, base + size - 1, tat - now, ("pending", bucket, 1.0)
    leases.keep_unused(bucket, unused)
    # Not a whole block left: this request alone, charged exactly.
    return gcra_verdict(conn, name, burst, rate, now)


def leased_gcra(
    conn: Connection, leases: Leases, name: str, burst: int, rate: float, now: float
) -> float | None:
    """:func:`leased_gcra_verdict`'s retry alone."""
    return leased_gcra_verdict(conn, leases, name, burst, rate, now)[0]


def leased_window_verdict(
    conn: Connection,
    leases: Leases,
    name: str,
    limit: int,
    period: float,
    now: float,
    *,
    closed: dict[str, float] | None = None,
) -> Verdict:
    """:func:`window_verdict` for one request, from a lease when the limit is high enough.

    A lease never outlives its window (its tokens count in the window they
    were leased in).
    """
    size = int(min(limit / 4, limit / period * LEASE_SECONDS))
    if size < 2:
        return window_verdict(conn, name, limit, period, now, closed=closed)
    start = _window_start(now, period)
    end = start + period
    bucket = f"w:{name}:{int(start)}"
    held = _from_leases(conn, leases, bucket, now)
    if held is not None:
        return held
    unused = leases.unused(bucket)
    prev = _previous(conn, name, start, period, closed)
    cap = limit - prev * (1 - (now - start) / period)
    params = {"bucket": bucket, "step": float(size), "end": end + period, "cap": cap}
    row = _hot.execute(conn, _sql.WINDOW, {**params, "ret": float(unused)}).fetchone()
    if row is not None:
        base = max(0, int(cap - float(row[0]) + 1e-9))
        _lease(conn, leases, bucket, (size - 1, min(now + LEASE_SECONDS, end), base, end))
        return None, base + size - 1, end - now, ("pending", bucket, 1.0)
    leases.keep_unused(bucket, unused)
    return window_verdict(conn, name, limit, period, now, closed=closed)


def leased_window(
    conn: Connection, leases: Leases, name: str, limit: int, period: float, now: float
) -> float | None:
    """:func:`leased_window_verdict`'s retry alone."""
    return leased_window_verdict(conn, leases, name, limit, period, now)[0]


def take_leased(leases: Leases, name: str, now: float, *, period: float | None = None) -> bool:
    """Admit one request of ``name`` from a live lease only (no database):
    the GCRA bucket, or with ``period`` the current window of that length."""
    if period is None:
        return leases.take(f"g:{name}", now)
    return leases.take(f"w:{name}:{int(_window_start(now, period))}", now)


def refund(conn: Connection, leases: Leases, charge: Charge) -> None:
    """Undo one admission in the transaction that made it (a later limit refused)."""
    how, bucket, amount = charge
    if how == "gcra":
        _hot.execute(conn, _sql.REFUND, {"bucket": bucket, "step": amount, "exp": amount})
    elif how == "window":
        _hot.execute(conn, _sql.REFUND, {"bucket": bucket, "step": amount, "exp": 0.0})
    elif how == "lease":
        leases.untake(bucket)
    else:
        pending = _hot.txn(conn).leases
        held = pending.get(bucket)
        if held is not None:
            pending[bucket] = (held[0] + 1, held[1], held[2], held[3])


def purge_expired(conn: Connection, now: float) -> None:
    """Forget windows and buckets that can no longer limit anything."""
    conn.execute(delete(buckets).where(buckets.c.expires_at < now - 1))


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is whole seconds: round up so a client that obeys it succeeds."""
    return str(max(1, math.ceil(seconds)))
