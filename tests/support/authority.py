"""The served authority: the real app under uvicorn over real HTTP, for tests and benchmarks.

In this process (``EmbeddedAuthority``), so a test can move its clock and read
its database: :class:`FakeClock` + :class:`Server` + :class:`Tenant` (the
authority's own tests), :func:`running_authority` with a :class:`ShiftClock`
(store and adapter tests), :func:`live_authority` (the auditor's toolkit).
In its own process (:func:`authority_process`), so a benchmark's threads do
not share its GIL. ``passgeni_authority`` is imported lazily, when an
authority is started.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from passgeni_core import AuthorityClient
from tests.support.seeds import with_commitments


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
    embedded: Any  # passgeni_authority.embedded.EmbeddedAuthority
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

    def post(
        self, path: str, body: Any = None, *, commit: bool = True, **kwargs: Any
    ) -> requests.Response:
        """POST ``body`` as JSON. As a well-behaved client does, a generation request
        (``/api/generate``, ``/api/generate-batch``) gets fresh seed commitments unless
        it has its own or ``commit=False`` (the tests of their refusal)."""
        if commit and isinstance(body, dict):
            body = with_commitments(path, body)
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


class ShiftClock:
    """Real time plus an offset that tests move (``with clock.shifted(days=-400):``)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    @contextlib.contextmanager
    def shifted(self, **delta: float) -> Iterator[None]:
        self.offset = timedelta(**delta)
        try:
            yield
        finally:
            self.offset = timedelta(0)


@dataclass
class Authority:
    url: str
    api_key: str
    clock: ShiftClock
    embedded: Any

    def client(self, **options: Any) -> AuthorityClient:
        return AuthorityClient(self.url, self.api_key, **options)

    def time_traveller(self) -> AuthorityClient:
        """A client for a fresh user, for requests made while the clock is shifted.

        Rate-limit state is per user and assumes time moves forward: a user
        that has made requests "now" must not make any in the past.
        """
        user = "aged-" + secrets.token_hex(4)
        key = self.embedded.service.create_api_key(user).key
        return AuthorityClient(self.url, key)


@contextlib.contextmanager
def running_authority(state: Path) -> Iterator[Authority]:
    from passgeni_authority import AuthoritySettings, RateLimits
    from passgeni_authority.embedded import EmbeddedAuthority

    clock = ShiftClock()
    settings = AuthoritySettings(
        state_dir=state, clock=clock, fips_strict=False, rate_limits=RateLimits.unlimited()
    )
    # The served address is the issuer, so cert URLs resolve and PASSGENI_URL verifies them.
    with EmbeddedAuthority(state_dir=state, settings=settings, issuer_is_base_url=True) as embedded:
        yield Authority(embedded.base_url, embedded.api_key, clock, embedded)


@dataclass
class Live:
    embedded: Any

    @property
    def url(self) -> str:
        return str(self.embedded.base_url)

    @property
    def api_key(self) -> str:
        return str(self.embedded.api_key)

    def client(self) -> AuthorityClient:
        return AuthorityClient(self.url, self.api_key, issuer=self.embedded.issuer)

    def flags(self) -> list[str]:
        return ["--url", self.url, "--api-key", self.api_key]


@contextlib.contextmanager
def live_authority(state: Path, **options: Any) -> Iterator[Live]:
    """The real authority app under uvicorn; the served URL is the issuer by default."""
    from passgeni_authority.embedded import EmbeddedAuthority

    options.setdefault("issuer_is_base_url", True)
    with EmbeddedAuthority(state_dir=state, **options) as embedded:
        yield Live(embedded)


# In its own process (the benchmarks).

_SERVE = """
import json, sys, time
from passgeni_authority.embedded import EmbeddedAuthority
with EmbeddedAuthority(state_dir=sys.argv[1]) as a:
    print(json.dumps({"url": a.base_url, "api_key": a.api_key, "issuer": a.issuer}), flush=True)
    sys.stdin.read()
"""


@dataclass
class ServedAuthority:
    url: str
    api_key: str
    issuer: str


@contextlib.contextmanager
def authority_process() -> Iterator[ServedAuthority]:
    with tempfile.TemporaryDirectory(prefix="passgeni-bench-") as state:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, state],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            yield ServedAuthority(**info)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
