"""Shared by the auditor's-toolkit tests: a helper that runs the ``passgeni`` CLI in-process
and a clean environment. (The served authority they talk to, ``live_authority``, is in
``tests.support.authority``.) Pure, so the unit tier holds it; integration imports it."""

from __future__ import annotations

from pathlib import Path

import pytest

from passgeni_core.cli import main


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
