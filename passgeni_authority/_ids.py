"""Random identifiers: API key prefixes, session ids, certificate ids."""

from __future__ import annotations

import secrets
import time

__all__ = ["b32", "ordered_id"]

_B32 = "abcdefghijklmnopqrstuvwxyz234567"
# Two base32 digits per entry: ids are made on every request, and
# base64.b32encode is pure Python.
_B32_PAIRS = [a + b for a in _B32 for b in _B32]


def b32(nbytes: int) -> str:
    """``nbytes`` random bytes (a multiple of 5) as lowercase unpadded base32."""
    return _b32_of(int.from_bytes(secrets.token_bytes(nbytes), "big"), nbytes)


def _b32_of(value: int, nbytes: int) -> str:
    pairs = _B32_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(nbytes * 8 - 10, -1, -10)])


def ordered_id() -> str:
    """24 base32 digits: 48 bits of milliseconds, then 72 random bits.

    For the columns with a unique index that every issuance writes
    (``cert_id``, ``session_jti``). With fully random keys each insert lands
    on its own leaf page of an index that outgrows the cache, so a commit
    of many certificates writes as many scattered pages, and the cost grows
    with the table. Keys made in the same instant share their leading
    digits, so inserts cluster in the newest pages. 72 random bits per
    millisecond keep ids impractical to enumerate; the time they reveal is
    on the page anyway.
    """
    now_ms = time.time_ns() // 1_000_000
    return _b32_of((now_ms & 0xFFFF_FFFF_FFFF) << 72 | secrets.randbits(72), 15)
