"""Fixtures shared by the store tests: the real authority with a shiftable clock.

Import the fixtures into a test module (``from tests.vault_plugin_helper.fixtures
import authority, clock, ...``). The authority is the real app
(``EmbeddedAuthority``: uvicorn + SQLite) whose clock a test can move, to
issue certificates that are old enough to be expiring or expired today.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import AuthorityClient
from tests._servers import MotoServer, OpenBaoServer


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


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    """The real authority (shared: use unique store paths per test)."""
    with running_authority(tmp_path_factory.mktemp("authority")) as auth:
        yield auth


@pytest.fixture
def uid() -> str:
    """A unique name part per test (the servers are shared by the session)."""
    return "t" + secrets.token_hex(4)


@pytest.fixture
def vault_env(openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Vault configured the usual way: VAULT_ADDR and VAULT_TOKEN."""
    for name in ("VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_CAPATH", "VAULT_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_ADDR", openbao.url)
    monkeypatch.setenv("VAULT_TOKEN", openbao.token)


def set_aws_env(monkeypatch: pytest.MonkeyPatch, moto: MotoServer) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_REGION", moto.region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS configured through the SDK's default chain (environment variables)."""
    set_aws_env(monkeypatch, moto_server)


@pytest.fixture
def passgeni_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, authority: Authority) -> None:
    """The CLI pointed at the test authority through its environment variables."""
    cfg = tmp_path / "absent-config.toml"
    cfg.write_text("")
    monkeypatch.setenv("PASSGENI_CONFIG", str(cfg))
    monkeypatch.setenv("PASSGENI_URL", authority.url)
    monkeypatch.setenv("PASSGENI_API_KEY", authority.api_key)
    monkeypatch.delenv("PASSGENI_ISSUER", raising=False)
    monkeypatch.delenv("PASSGENI_TIMEOUT", raising=False)
