"""Shared by the auditor's-toolkit tests: a real embedded authority (uvicorn + SQLite)
and a helper that runs the ``passgeni`` CLI in-process against it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import AuthorityClient
from passgeni_core.cli import main


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


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration leaks in from the developer's machine."""
    for name in ("PASSGENI_URL", "PASSGENI_API_KEY", "PASSGENI_TIMEOUT", "PASSGENI_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSGENI_CONFIG", str(tmp_path / "absent-config.toml"))
    (tmp_path / "absent-config.toml").write_text("")
