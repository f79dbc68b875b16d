"""Small helpers the authority's parts share: the clock, a bounded cache,
instants as the API writes them, database failures as API errors."""

from __future__ import annotations

import functools
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, overload

from passgeni_core import AuthorityUnavailable

from ._settings import AuthoritySettings

__all__ = ["LRU", "db_unavailable", "instant", "iso", "now"]


def now(settings: AuthoritySettings) -> datetime:
    """The authority's time (``settings.clock``), aware UTC."""
    value = settings.clock()
    if value.tzinfo is None:
        raise ValueError("the authority clock must return timezone-aware datetimes")
    return value.astimezone(UTC)


class LRU(OrderedDict[Any, Any]):
    """A small bounded mapping (least recently stored entries go first); thread-safe
    enough for its use: single dict operations under the GIL, and a lost
    entry only costs a recomputation."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self._size:
            self.popitem(last=False)


@functools.lru_cache(maxsize=256)
def iso(value: datetime | None) -> str | None:
    """An instant as the API writes it (whole seconds, ``Z``)."""
    # Cached: a batch's (and a second's) certificates share their instants.
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@overload
def instant(value: datetime) -> datetime: ...
@overload
def instant(value: None) -> None: ...
def instant(value: datetime | None) -> datetime | None:
    """An instant as the API sends it: aware UTC, whole seconds (the wire
    Structs encode it as :func:`iso` writes it)."""
    return None if value is None else _instant(value)


@functools.lru_cache(maxsize=256)
def _instant(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def db_unavailable(exc: Exception) -> AuthorityUnavailable:
    return AuthorityUnavailable(f"the authority's database failed: {type(exc).__name__}")
