"""Helpers the unit and integration halves of the CLI tests share (no servers here)."""

from __future__ import annotations

import importlib.metadata
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from passgeni_core.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration leaks in from the developer's machine."""
    for name in ("PASSGENI_URL", "PASSGENI_API_KEY", "PASSGENI_TIMEOUT", "PASSGENI_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSGENI_CONFIG", str(tmp_path / "absent-config.toml"))
    (tmp_path / "absent-config.toml").write_text("")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, code: str) -> None:
    assert err.count("\n") == 1 and f"[{code}]" in err and "Traceback" not in err


def embedded_entry_points(monkeypatch: pytest.MonkeyPatch, found: list[EntryPoint]) -> None:
    """Make the ``passgeni.embedded`` lookup find ``found``; other groups are untouched."""
    real = importlib.metadata.entry_points

    def entry_points_(**params: Any) -> Any:
        if params.get("group") == "passgeni.embedded":
            return found
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points_)
