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


def issue_in_process(
    service: Any,
    key: str,
    body: dict[str, Any] | None = None,
    *,
    ip: str | None = None,
    **redeem: Any,
) -> tuple[Any, Any]:
    """``(session batch, issued certificate)``: one certificate through an in-process
    ``AuthorityService``'s two steps (open a session with a fresh seed commitment, redeem it
    with ``redeem``'s fields), as a client would over HTTP."""
    import asyncio

    async def two_steps() -> tuple[Any, Any]:
        batch = await service.open_sessions(
            key,
            ip=ip,
            endpoint="test",
            body={**(body or {"compliance_standard": "soc2"}), "seed_commitment": commitment()},
            count=1,
            generation_attempts=1,
        )
        issued = await service.issue_certificate(
            key,
            {"generation_session_id": batch.generation_session_ids[0], **redeem},
            ip=ip,
            endpoint="test",
        )
        return batch, issued

    return asyncio.run(two_steps())
