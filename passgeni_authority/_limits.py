"""The limits of each caller (:class:`RateLimiter`), and what every answer says of them.

A request is admitted by every limit that applies to it or charged by none:
each primitive of :mod:`._ratelimit` counts a request only when it fits,
and when a later limit refuses, the earlier ones are refunded in the same
transaction (a ``generate-batch`` over the per-IP limit is refused whole and
spends nothing).

Every answer under a limit carries the IETF ``RateLimit-Policy`` and
``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers): the policies
that applied to the request (``q`` quota units per ``w`` seconds) and, for
each, the quota left (``r``) and the seconds until it is whole again
(``t``). The service reports them through a context variable the
``Observe`` middleware (``_metrics``) reads, so no layer in between carries them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from contextvars import ContextVar, Token

from sqlalchemy.engine import Connection

from passgeni_core import InvalidRequest, RateLimited

from ._models import Principal
from ._ratelimit import (
    Charge,
    Leases,
    leased_gcra_verdict,
    leased_window_verdict,
    purge_expired,
    refund,
    retry_after_header,
    window_verdict,
)
from ._settings import RateLimits

__all__ = [
    "Admission",
    "Quota",
    "RateLimiter",
    "collect",
    "limit_headers",
    "report",
    "stop_collecting",
]

#: A refusal by a limit: retryable (429) or never (the request alone is over it: 400).
PassgeniLimitError = RateLimited | InvalidRequest

#: One policy's state for one request: ``(name, quota, window seconds, left, reset seconds)``.
Quota = tuple[str, int, int, int, float]

_CURRENT: ContextVar[list[Quota] | None] = ContextVar("passgeni_limits", default=None)


def report(quotas: Sequence[Quota]) -> None:
    """Say which limits applied to the current request (read by ``_metrics.Observe``)."""
    holder = _CURRENT.get()
    if holder is not None:
        holder.extend(quotas)


def collect() -> tuple[list[Quota], Token[list[Quota] | None]]:
    """Start collecting what :func:`report` says of the current request: the
    list it fills, and the token that ends it (:func:`stop_collecting`).
    Called by the ``Observe`` middleware (``_metrics``) for every request."""
    holder: list[Quota] = []
    return holder, _CURRENT.set(holder)


def stop_collecting(token: Token[list[Quota] | None]) -> None:
    _CURRENT.reset(token)


@functools.lru_cache(maxsize=256)
def _policy_field(policies: tuple[tuple[str, int, int], ...]) -> bytes:
    return ", ".join(f'"{n}";q={q};w={w}' for n, q, w in policies).encode("ascii")


def _state(name: str, left: int, reset: float) -> str:
    return f'"{name}";r={max(0, left)};t={max(0, math.ceil(reset - 1e-9))}'


def limit_headers(quotas: Sequence[Quota]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` and ``RateLimit`` of the policies that applied (one each per name)."""
    if len(quotas) == 1:  # one policy (an automation key's own rate): most answers
        n, q, w, r, t = quotas[0]
        return [
            (b"ratelimit-policy", _policy_field(((n, q, w),))),
            (b"ratelimit", _state(n, r, t).encode("ascii")),
        ]
    seen: dict[str, Quota] = {}
    for quota in quotas:
        seen[quota[0]] = quota  # the latest word on a policy
    policy = _policy_field(tuple((n, q, w) for n, q, w, _r, _t in seen.values()))
    state = ", ".join(_state(n, r, t) for n, _q, _w, r, t in seen.values())
    return [(b"ratelimit-policy", policy), (b"ratelimit", state.encode("ascii"))]


class Admission:
    """What the caller's limits said of one request: ``retry`` (``None``: admitted),
    the charges to refund if a later limit refuses, and the quotas to report."""

    __slots__ = ("charges", "policy", "quotas", "retry")

    def __init__(self) -> None:
        self.retry: float | None = None
        #: The policy that refused the request (``retry`` set).
        self.policy: str | None = None
        self.charges: list[Charge] = []
        self.quotas: list[Quota] = []


class RateLimiter:
    """The limits of each caller, applied in the request's transaction.

    A key with its own rate (an automation key) has its own bucket, with a
    burst as large as a minute's worth; every other key shares its user's
    bucket and the published defaults. Generation attempts of keys without
    their own rate also count per client IP (a sliding hour); public
    certificate views count per client IP (a burst of a minute's worth,
    refilled evenly).
    """

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        # Tokens leased by this process (see _ratelimit.Leases).
        self.leases = Leases()
        # Counts of closed windows, read once (see _ratelimit._previous).
        self.closed: dict[str, float] = {}
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

    @staticmethod
    def _names(principal: Principal) -> tuple[str, str]:
        return (
            ("key-burst", "key-minute") if principal.rate_limit is not None else ("burst", "minute")
        )

    def admit(self, conn: Connection, principal: Principal, now: float) -> Admission:
        """Charge one request to the caller's limits in ``conn`` (all of them or none)."""
        bucket, per_minute, burst, rate = self.of(principal)
        burst_name, minute_name = self._names(principal)
        out = Admission()
        if burst is not None:
            retry, left, reset, charge = leased_gcra_verdict(
                conn, self.leases, bucket, burst, rate, now
            )
            out.quotas.append((burst_name, burst, max(1, round(burst / rate)), left, reset))
            if retry is not None:
                out.retry, out.policy = retry, burst_name
            elif charge is not None:
                out.charges.append(charge)
        if out.retry is None and per_minute is not None:
            retry, left, reset, charge = leased_window_verdict(
                conn, self.leases, bucket, per_minute, 60.0, now, closed=self.closed
            )
            out.quotas.append((minute_name, per_minute, 60, left, reset))
            if retry is not None:
                out.retry, out.policy = retry, minute_name
                self.refund(conn, out)
            elif charge is not None:
                out.charges.append(charge)
        self._purge_counter += 1
        if self._purge_counter % 500 == 0:
            purge_expired(conn, now)
        return out

    def refund(self, conn: Connection, admission: Admission) -> None:
        """Undo every charge of ``admission`` (a later limit refused the request)."""
        for charge in admission.charges:
            refund(conn, self.leases, charge)
        admission.charges.clear()

    def admit_from_leases(self, principal: Principal, now: float) -> list[Quota] | None:
        """Admit one request from this process's committed leases alone (no write):
        the quotas to report, or ``None``: then the request is charged by :meth:`admit`."""
        bucket, per_minute, burst, rate = self.of(principal)
        burst_name, minute_name = self._names(principal)
        quotas: list[Quota] = []
        if burst is not None:
            taken = self.leases.take_remaining(f"g:{bucket}", now)
            if taken is None:
                return None
            window = max(1, round(burst / rate))
            quotas.append((burst_name, burst, window, taken[0], max(taken[1] - now, 0.0)))
        if per_minute is not None:
            start = int(math.floor(now / 60.0) * 60)
            taken = self.leases.take_remaining(f"w:{bucket}:{start}", now)
            if taken is None:
                if burst is not None:
                    self.leases.untake(f"g:{bucket}")  # charged by admit() instead
                return None
            quotas.append((minute_name, per_minute, 60, taken[0], max(taken[1] - now, 0.0)))
        return quotas

    def release_fast(self, principal: Principal, now: float) -> None:
        """Give back what :meth:`admit_from_leases` took (the request goes the ordinary way)."""
        bucket, per_minute, burst, _rate = self.of(principal)
        if burst is not None:
            self.leases.untake(f"g:{bucket}")
        if per_minute is not None:
            self.leases.untake(f"w:{bucket}:{int(math.floor(now / 60.0) * 60)}")

    def generation(
        self,
        conn: Connection,
        principal: Principal,
        ip: str | None,
        attempts: int,
        now: float,
        admission: Admission,
    ) -> PassgeniLimitError | None:
        """Count ``attempts`` generation attempts of ``ip`` in the sliding hour (keys
        without their own rate only); the error when they do not all fit, after
        refunding ``admission`` (the request is then charged nothing)."""
        limit = self.limits.generation_per_ip_per_hour
        if not attempts or limit is None or principal.rate_limit is not None:
            return None
        retry, left, reset, _charge = window_verdict(
            conn,
            f"gen-ip:{ip or 'unknown'}",
            limit,
            3600.0,
            now,
            amount=attempts,
            closed=self.closed,
        )
        admission.quotas.append(("generation-ip", limit, 3600, left, reset))
        if retry is None:
            return None
        self.refund(conn, admission)
        admission.retry, admission.policy = retry, "generation-ip"
        if math.isinf(retry):
            return InvalidRequest(
                f"{attempts} generation attempts in one request are more than the {limit} "
                "allowed per IP address per hour; send fewer, or use an automation key "
                "(create-key --rate-limit) for bulk work"
            )
        return RateLimited(
            f"at most {limit} certificate generation attempts per IP address per hour; "
            f"retry in {retry_after_header(retry)} s",
            retry_after=retry,
        )

    def view(
        self, conn: Connection, ip: str | None, now: float
    ) -> tuple[RateLimited | None, Quota]:
        """Count one public certificate view of ``ip``; the error when over its limit."""
        limit = self.limits.views_per_ip_per_minute
        assert limit is not None
        retry, left, reset, _charge = leased_gcra_verdict(
            conn, self.leases, f"view-ip:{ip or 'unknown'}", limit, limit / 60.0, now
        )
        quota: Quota = ("views-ip", limit, 60, left, reset)
        if retry is None:
            return None, quota
        return RateLimited(
            f"at most {limit} certificate views per IP address per minute; "
            f"retry in {retry_after_header(retry)} s",
            retry_after=retry,
        ), quota

    @staticmethod
    def user_limited(principal: Principal, retry: float) -> RateLimited:
        return RateLimited(
            f"too many requests for user {principal.user_id}; retry in "
            f"{retry_after_header(retry)} s",
            retry_after=retry,
        )
