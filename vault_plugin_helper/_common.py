"""Helpers shared by the store backends: limits and safe one-line messages."""

from __future__ import annotations

from collections.abc import Iterable

from passgeni_core import StoreLimitExceeded

__all__ = ["check_metadata_limits", "scrub"]


def scrub(text: object, secrets: Iterable[str | None] = (), limit: int = 300) -> str:
    """One line, bounded, with every given secret replaced by ``***``."""
    out = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out[:limit]


def check_metadata_limits(
    merged: dict[str, str],
    ours: dict[str, str],
    *,
    where: str,
    max_keys: int,
    max_key_bytes: int,
    min_value_bytes: int,
    max_value_bytes: int,
    what: str,
) -> None:
    """Raise StoreLimitExceeded when ``merged`` (existing + ours) breaks a limit.

    Only our own values are checked for size and shown (they are public
    certificate references); foreign values are counted, never echoed.
    """
    if len(merged) > max_keys:
        raise StoreLimitExceeded(
            f"{where}: {what} would hold {len(merged)} keys, more than the limit of {max_keys}; "
            f"{len(merged) - len(ours)} existing keys leave no room for the {len(ours)} "
            "certificate references"
        )
    for key, value in ours.items():
        if len(key.encode()) > max_key_bytes:
            raise StoreLimitExceeded(f"{where}: {what} key {key!r} exceeds {max_key_bytes} bytes")
        size = len(value.encode())
        if not min_value_bytes <= size <= max_value_bytes:
            raise StoreLimitExceeded(
                f"{where}: {what} value of {key!r} is {size} bytes; the store accepts "
                f"{min_value_bytes}-{max_value_bytes}"
            )
