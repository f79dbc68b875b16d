"""Fixtures shared by the store tests: the real authority with a shiftable clock.

Import the fixtures into a test module (``from tests.integration.vault_plugin_helper.fixtures
import authority, clock, ...``). The authority is the real app
(``EmbeddedAuthority``: uvicorn + SQLite) whose clock a test can move, to
issue certificates that are old enough to be expiring or expired today.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MotoServer, OpenBaoServer
from tests.support.authority import Authority, running_authority


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
