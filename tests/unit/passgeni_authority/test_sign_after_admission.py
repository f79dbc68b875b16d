"""Nothing is signed for a caller the authority does not admit.

Issuance authorises the key, applies its rate limits and checks the session
before the signer is called: an unknown or revoked key, a rate-limited
caller or another tenant's session gets its error without a signature
being made (the signer counts every call).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from passgeni_authority import AuthorityService, AuthoritySettings, LocalFileSigner, RateLimits
from passgeni_core import RateLimited, SessionInvalid, Unauthenticated
from tests.support.seeds import commitment

_NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


class CountingSigner(LocalFileSigner):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.signed = 0

    def sign(self, signer_ref: str, signing_input: bytes) -> bytes:
        self.signed += 1
        return super().sign(signer_ref, signing_input)


@pytest.fixture
def service(tmp_path: Path) -> Any:
    signer = CountingSigner(tmp_path / "keys")
    settings = AuthoritySettings(
        database_url=f"sqlite:///{tmp_path / 'authority.db'}",
        state_dir=tmp_path,
        signer=signer,
        rate_limits=RateLimits(generation_per_ip_per_hour=None),
        clock=lambda: _NOW,  # fixed: the per-minute window cannot roll over mid-test
    )
    with AuthorityService(settings) as svc:
        yield svc, signer


def _session(svc: AuthorityService, key: str) -> str:
    batch = asyncio.run(
        svc.open_sessions(
            key,
            ip=None,
            endpoint="test",
            body={"compliance_standard": "soc2", "seed_commitment": commitment()},
            count=1,
            generation_attempts=1,
        )
    )
    return batch.generation_session_ids[0]


def _redeem(svc: AuthorityService, key: str, sid: str) -> Any:
    return asyncio.run(
        svc.issue_certificate(key, {"generation_session_id": sid}, ip=None, endpoint="test")
    )


def test_a_revoked_or_unknown_key_gets_no_signature(service: Any) -> None:
    svc, signer = service
    created = svc.create_api_key("alice")
    sid = _session(svc, created.key)
    svc.revoke_api_key(created.prefix)
    with pytest.raises(Unauthenticated):
        _redeem(svc, created.key, sid)
    with pytest.raises(Unauthenticated):
        asyncio.run(
            svc.issue_certificates(
                created.key, [{"generation_session_id": sid}], ip=None, endpoint="test"
            )
        )
    unknown = created.key[:-4] + ("AAAA" if not created.key.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated):
        _redeem(svc, unknown, sid)
    assert signer.signed == 0


def test_a_rate_limited_caller_gets_no_signature(service: Any) -> None:
    svc, signer = service
    key = svc.create_api_key("bulk", rate_limit=3).key
    first, second = _session(svc, key), _session(svc, key)  # two of three requests
    assert _redeem(svc, key, first).cert_id.startswith("pg_")
    assert signer.signed == 1
    with pytest.raises(RateLimited):
        _redeem(svc, key, second)
    assert signer.signed == 1


def test_another_tenants_session_gets_no_signature(service: Any) -> None:
    svc, signer = service
    alice = svc.create_api_key("alice").key
    mallory = svc.create_api_key("mallory").key
    sid = _session(svc, alice)
    with pytest.raises(SessionInvalid):
        _redeem(svc, mallory, sid)
    assert signer.signed == 0
    _redeem(svc, alice, sid)
    assert signer.signed == 1
