"""What the hostile-input modules share: the served authority, tenants, and the checks.

``server`` is module-scoped, so each module gets its own authority (one of them
moves its clock forward for good). A module takes the fixtures with
``from tests.reliability._hostile import *``.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority
from tests.support.authority import FakeClock, Server, Tenant

#: What ``import *`` brings: the fixtures (the helpers are imported by name).
__all__ = ["alice", "bob", "server"]


class Tally:
    """How many hostile inputs of each kind a module tried (the figures of docs/reliability.md)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n

    def report(self) -> None:
        print("hostile inputs tried:", json.dumps(self.counts, sort_keys=True))
        assert sum(self.counts.values()) > 0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def unb64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state_dir = tmp_path_factory.mktemp("hostile-authority")
    clock = FakeClock()
    settings_ = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_strict=True,
        rate_limits=RateLimits(),
        trusted_proxies=("127.0.0.1",),
    )
    with EmbeddedAuthority(settings=settings_, issuer_is_base_url=True) as embedded:
        yield Server(embedded=embedded, clock=clock, state_dir=state_dir)


_ip = iter(range(1, 1_000_000))


def tenant(server: Server) -> Tenant:
    user = f"h-{secrets.token_hex(5)}"
    key = server.service.create_api_key(user, rate_limit=1_000_000).key
    n = next(_ip)
    return Tenant(server=server, user=user, key=key, ip=f"10.99.{n >> 8 & 255}.{n & 255}")


@pytest.fixture
def alice(server: Server) -> Tenant:
    return tenant(server)


@pytest.fixture
def bob(server: Server) -> Tenant:
    return tenant(server)


def healthy(server: Server) -> None:
    r = requests.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def refused(response: requests.Response, status: int | set[int], code: str | set[str]) -> None:
    codes = {code} if isinstance(code, str) else code
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] in codes, body
    assert isinstance(body["message"], str) and 0 < len(body["message"]) <= 1000
