"""Seed commitments for tests that talk to the authority's API by hand.

Every generation session is opened with a commitment to the client's seed
(``docs/generator.md``); a test that does not derive a password still needs one.
"""

from __future__ import annotations

from typing import Any

from passgeni_core import seed_commitment
from passgeni_core.model import new_seed

__all__ = ["commitment", "commitments", "with_commitments"]


def commitment() -> str:
    """A commitment to a fresh seed (the seed itself is thrown away)."""
    return seed_commitment(new_seed())


def commitments(count: int) -> list[str]:
    return [commitment() for _ in range(count)]


def with_commitments(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with fresh seed commitments if it is a generation request that has none
    (``seed_commitment`` for ``/api/generate``, one per ``count`` for the batch)."""
    if "seed_commitment" in body or "seed_commitments" in body:
        return body
    if path.endswith("/api/generate"):
        return {**body, "seed_commitment": commitment()}
    count = body.get("count")
    if path.endswith("/api/generate-batch") and isinstance(count, int) and 1 <= count <= 1000:
        return {**body, "seed_commitments": commitments(count)}
    return body
