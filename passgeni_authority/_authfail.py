"""A cheap per-IP limit on failed authentication (issue #21, finding 2).

A request with no key, a malformed key or an unknown one costs the authority a
key lookup and a (aggregated) refusal record; a client spraying keys could make
every one of them cost that. After ``limit`` failures from one IP within a
minute (GCRA: the budget refills evenly), further requests from that IP are
refused 429 before any database work, unless their key is one this process
already knows to be good (a colleague behind the same NAT keeps working).

Kept in each process's memory on purpose: it must cost nothing per request,
and the database limits behind it still hold for whatever passes. With N
processes an IP gets at most N times the budget before every one refuses it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from passgeni_core import RateLimited

__all__ = ["FailedAuthentications"]

#: IPs remembered at most; beyond, those whose budget is whole again are forgotten.
_MAX_TRACKED = 100_000


class FailedAuthentications:
    """``limit`` failures per IP per minute (``None``: no limit)."""

    def __init__(self, limit: int | None, *, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._interval = window / limit if limit else 0.0
        #: ip -> theoretical arrival time of its next failure (GCRA).
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, ip: str | None, now: float) -> float | None:
        """Seconds until ``ip`` may fail again, or ``None`` while it is within budget."""
        if self.limit is None or ip is None or not self._tat:
            return None
        tat = self._tat.get(ip)
        if tat is None:
            return None
        wait = tat - now - self.window + self._interval
        return wait if wait > 0 else None

    def failed(self, ip: str | None, now: float) -> None:
        """Count one failed authentication from ``ip``."""
        if self.limit is None or ip is None:
            return
        with self._lock:
            if len(self._tat) >= _MAX_TRACKED:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            self._tat[ip] = max(self._tat.get(ip, now), now) + self._interval

    def admit(
        self, ip: str | None, api_key: str | None, known_good: Callable[[str], bool], now: float
    ) -> None:
        """Refuse ``ip`` while it is over budget, unless ``api_key`` is known good.

        Raises:
            RateLimited: with ``retry_after``.
        """
        wait = self.retry_after(ip, now)
        if wait is None or (api_key and known_good(api_key)):
            return
        seconds = math.ceil(wait)
        raise RateLimited(
            f"too many failed authentications from this address; retry in {seconds} s",
            retry_after=seconds,
        )
