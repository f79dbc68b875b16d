"""What an API key looks like and what the database keeps of it."""

from __future__ import annotations

import hashlib
import re

from passgeni_core import Unauthenticated

from ._models import KEY_PREFIX

__all__ = ["check_key_format", "hash_api_key"]

_PREFIX_RE = re.compile(r"^[a-z2-7]{8}$")


def hash_api_key(key: str) -> str:
    """SHA-256 (hex) of an API key: what the database stores instead of the key.

    A plain hash suffices (no slow KDF): keys carry 256 random bits, so there
    is nothing to brute-force, and a fast hash keeps every request cheap.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_key_format(api_key: str | None) -> str:
    """The key's public prefix. Raises Unauthenticated (no database access)."""
    if not api_key:
        raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not _PREFIX_RE.match(parts[1]):
        raise Unauthenticated("the API key is malformed")
    return parts[1]
