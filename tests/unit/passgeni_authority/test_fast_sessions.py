"""The fast path for opening sessions (``POST /api/generate``), over real HTTP.

An automation key admitted from this process's rate-limit leases, asking for
a request already stored, is answered without waiting for any write: its
``api_access`` event is queued and written by the next group commit. The
answers and the rules must be those of the ordinary path: every access is
recorded, every session redeems exactly once, a revoked key is refused at
once and a rate limit is never bypassed.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.support.seeds import commitment


def test_shutdown_waits_for_queued_access_events(tmp_path: Any) -> None:
    """The app's lifespan ends only after the fast path's queued events are committed
    (the loop cancels whatever is still pending once it stops)."""
    import asyncio

    from passgeni_authority import AuthorityService, AuthoritySettings
    from passgeni_authority._app import create_app

    service = AuthorityService(AuthoritySettings(state_dir=tmp_path, public_url="http://a.test"))
    key = service.create_api_key("fast", rate_limit=100_000).key
    app = create_app(service=service)
    headers = [(b"authorization", f"Bearer {key}".encode())]
    body = json.dumps({"compliance_standard": "soc2", "seed_commitment": commitment()}).encode()

    async def generate() -> int:
        scope = {"type": "http", "method": "POST", "path": "/api/generate", "headers": headers}
        scope |= {"client": ("127.0.0.1", 1), "query_string": b"", "root_path": ""}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        status: int = sent[0]["status"]
        return status

    async def main() -> set[Any]:
        async with app.router.lifespan_context(app):
            assert [await generate() for _ in range(30)] == [200] * 30
        return set(service.events._later_tasks)

    try:
        assert asyncio.run(main()) == set()
        with sqlite3.connect(tmp_path / "authority.db") as db:
            (count,) = db.execute(
                "SELECT count(*) FROM usage_events WHERE kind = 'api_access' AND user_id = 'fast'"
            ).fetchone()
        assert count == 30
    finally:
        service.close()
