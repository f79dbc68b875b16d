"""Load, durability and ``kill -9``: ``tests/support/load.py`` (what ``bench/load_authority.py``
runs) with a short bound.

Real authority processes (uvicorn subprocesses: SQLite state directory, and
two processes on one PostgreSQL database), real ``wrk`` at its maximum rate
running the full issuance flow, a ``kill -9`` of an authority process in the
middle of the load and a restart on the same port. Everything a client was
answered is checked afterwards (see that module's docstring); the long
run is ``python bench/load_authority.py`` (60 s per phase).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import PostgresCluster, load as load_authority


def _check(results: list[load_authority.PhaseResult], tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "load.json").write_text(json.dumps([r.report for r in results], indent=2))
    for result in results:
        assert result.problems == [], (result.name, result.problems)
    crash = results[-1].report
    # The run did real work before and after the kill, and every answer was checked.
    assert crash["kills"] == 1
    assert crash["certificates_answered"] > 0
    assert crash["verified"] == crash["certificates_answered"]
    assert crash["audited"] == crash["certificates_answered"]
    assert crash["retrieved_individually"] > 0
    assert crash["http_5xx"] == 0
    assert crash["http_errors"] == 0
    # Sessions redeemed before the kill were offered again after the restart and refused.
    assert crash["redeemed_sessions_answered_again_never_reissued"] > 0
    # Every answered certificate is a leaf of the transparency log, proven in its checkpoint,
    # and the log after the kill extends the one before it.
    assert crash["log_leaves_of_answered"] == crash["certificates_answered"]
    assert crash["log_inclusion_proven"] > 0 and crash["log_consistent_with_before"]
    return crash


def test_sqlite_authority_survives_load_and_kill_9(tmp_path: Path) -> None:
    results = load_authority.run_backend(
        "sqlite",
        duration=4,
        crash_duration=12,
        kill_at=0.25,
        threads=2,
        connections=8,
        workdir=tmp_path,
        log=lambda line: None,
    )
    steady = results[0].report
    assert steady["kills"] == 0 and steady["certificates_answered"] > 0
    assert steady["verified"] == steady["certificates_answered"]
    _check(results, tmp_path)


def test_two_postgres_authorities_survive_load_and_kill_9(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    results = load_authority.run_backend(
        "postgres",
        duration=12,
        kill_at=0.25,
        threads=2,
        connections=8,
        steady=False,
        workdir=tmp_path,
        postgres=postgres,
        log=lambda line: None,
    )
    crash = _check(results, tmp_path)
    assert crash["processes"] == 2
