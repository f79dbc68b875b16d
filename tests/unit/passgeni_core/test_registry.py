"""`passgeni registry`: the credential -> certificate map from the authority's audit
and a scan of a real OpenBao (Vault API) store; CSV, JSON and an RFC 5545 calendar
parsed back with icalendar."""

from __future__ import annotations

import pytest

from passgeni_core import InvalidRequest, build_registry
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


def test_registry_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "registry", "--scope", "nosuch://x", "--url", "http://127.0.0.1:9")
    assert code == 2 and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:
        run(capsys, "registry", "--remind-days", "-1")
    assert exited.value.code == 2 and "between 0 and 3650" in capsys.readouterr().err
    with pytest.raises(InvalidRequest):
        build_registry([], remind_days=5000)
