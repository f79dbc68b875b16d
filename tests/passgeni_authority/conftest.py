"""Fixtures for the authority tests: one real uvicorn server per session, a
controllable clock, and per-test tenants (fresh user, key and client IP each,
so rate limits and isolation never leak between tests).

The server runs the real app under real uvicorn over real HTTP; it is in
this process (``EmbeddedAuthority`` with test settings) only so tests can
move its clock and read its database.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority.embedded import EmbeddedAuthority


class FakeClock:
    """A clock tests move forward; the authority reads it through ``settings.clock``."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def align(self, period: float) -> None:
        """Move to the start of the next ``period``-second window (+1 ms)."""
        with self._lock:
            ts = self._now.timestamp()
            nxt = (int(ts // period) + 1) * period + 0.001
            self._now = datetime.fromtimestamp(nxt, UTC)


@dataclass
class Server:
    embedded: EmbeddedAuthority
    clock: FakeClock
    state_dir: Path

    @property
    def url(self) -> str:
        return self.embedded.base_url

    @property
    def service(self) -> Any:
        return self.embedded.service

    @property
    def db_path(self) -> Path:
        return self.state_dir / "authority.db"

    def jwks(self) -> dict[str, Any]:
        response = plain_session().get(f"{self.url}/.well-known/jwks.json", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def plain_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never a proxy between the test and 127.0.0.1
    return session


_ips = itertools.count(1)


@dataclass
class Tenant:
    """A user with an API key, calling from its own (forwarded) IP address."""

    server: Server
    user: str
    key: str
    ip: str
    team: str | None = None
    http: requests.Session = field(default_factory=plain_session)

    def __post_init__(self) -> None:
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        self.http.headers["X-Forwarded-For"] = self.ip

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.http.post(f"{self.server.url}{path}", json=body, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.server.url}{path}", timeout=30, **kwargs)

    def session(self, standard: str = "soc2", **extra: Any) -> str:
        response = self.post("/api/generate", {"compliance_standard": standard, **extra})
        assert response.status_code == 200, response.text
        sid: str = response.json()["generation_session_id"]
        return sid

    def certificate(
        self, standard: str = "soc2", parameters: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        sid = self.session(standard, **({"parameters": parameters} if parameters else {}))
        response = self.post("/api/generate-certificate", {"generation_session_id": sid, **extra})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real app under uvicorn on a free port, SQLite store, default (served) limits."""
    state_dir = tmp_path_factory.mktemp("authority")
    clock = FakeClock()
    settings = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_strict=True,
        rate_limits=RateLimits(),
        trusted_proxies=("127.0.0.1",),
    )
    with EmbeddedAuthority(settings=settings, issuer_is_base_url=True) as embedded:
        yield Server(embedded=embedded, clock=clock, state_dir=state_dir)


@pytest.fixture
def make_tenant(authority: Server) -> Any:
    """``make_tenant(automation=True, team=None)``: a fresh user, key and IP.

    Automation tenants carry a high per-key limit (and skip the per-IP
    generation limit), so tests that are not about limits never trip them.
    """

    def make(
        *, automation: bool = True, team: str | None = None, user: str | None = None
    ) -> Tenant:
        user = user or f"u-{uuid.uuid4().hex[:10]}"
        created = authority.service.create_api_key(
            user, team=team, rate_limit=100_000 if automation else None
        )
        n = next(_ips)
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        return Tenant(server=authority, user=user, key=created.key, ip=ip, team=team)

    return make
