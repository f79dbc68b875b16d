"""Seed commitments for tests that talk to the authority's API by hand.

Every generation session is opened with a commitment to the client's seed
(``docs/generator.md``); a test that does not derive a password still needs one.
"""

from __future__ import annotations

from passgeni_core import seed_commitment
from passgeni_core.model import new_seed

__all__ = ["commitment", "commitments"]


def commitment() -> str:
    """A commitment to a fresh seed (the seed itself is thrown away)."""
    return seed_commitment(new_seed())


def commitments(count: int) -> list[str]:
    return [commitment() for _ in range(count)]
