"""Nothing expensive runs before authentication, and validation never runs on the event loop
(issue #21, finding 2): a keyless batch request with a heavy body (exact entropy at length 256)
cost 0.3-0.4 s of the event loop, so four such clients stalled ``/healthz``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_core import Unauthenticated
from tests.support.seeds import commitments

HEAVY = {
    "compliance_standard": "soc2",
    "parameters": {
        "length": 256,
        "min_upper": 40,
        "min_lower": 40,
        "min_digits": 40,
        "min_special": 40,
        "min_classes_present": 4,
    },
}


def _open(svc: AuthorityService, key: str | None, body: dict[str, Any], count: int = 3) -> Any:
    return asyncio.run(
        svc.open_sessions(
            key,
            ip="192.0.2.7",
            endpoint="test",
            body={**body, "seed_commitments": commitments(count)},
            count=count,
            generation_attempts=count,
        )
    )


def test_an_unknown_key_is_refused_before_the_body_is_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuthorityService(AuthoritySettings(state_dir=tmp_path, public_url="http://a.test")) as svc:
        validated: list[str] = []
        real = svc.sessions._validate

        def counting(body: Any) -> Any:
            validated.append(threading.current_thread().name)
            return real(body)

        monkeypatch.setattr(svc.sessions, "_validate", counting)
        for key in (None, "", "pg_" + "x" * 40, "not a key"):
            with pytest.raises(Unauthenticated):
                _open(svc, key, HEAVY)
        assert validated == []

        # A known key's new body is validated once, off the event loop's thread.
        key = svc.create_api_key("alice").key
        loop_thread: list[str] = []

        async def opened() -> Any:
            loop_thread.append(threading.current_thread().name)
            return await svc.open_sessions(
                key,
                ip="192.0.2.7",
                endpoint="test",
                body={**HEAVY, "seed_commitments": commitments(2)},
                count=2,
                generation_attempts=2,
            )

        batch = asyncio.run(opened())
        assert len(batch.generation_session_ids) == 2
        assert len(validated) == 1 and validated[0] != loop_thread[0]
        _open(svc, key, HEAVY, count=1)  # seen before: a lookup, no validation
        assert len(validated) == 1
