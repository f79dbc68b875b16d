"""An authority on a PostgreSQL server that can lose acknowledged commits says so at start.

The authority answers a certificate once its ``COMMIT`` returned; that means "on disk" only
with ``fsync`` and ``synchronous_commit`` on (docs/reliability.md, power loss). The test
cluster runs with both off (speed), which is exactly what must be reported.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import create_engine, text

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_authority._storage import durability_warnings
from tests.support.postgres import PostgresCluster


def test_a_server_that_can_lose_commits_is_reported(
    postgres: PostgresCluster, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres.create_database(f"durability_{uuid.uuid4().hex[:8]}")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = durability_warnings(conn)
            assert [w.split()[2] for w in found] == ["fsync=off:", "synchronous_commit=off:"]
            conn.execute(text("SET synchronous_commit TO on"))
            assert [w.split()[2] for w in durability_warnings(conn)] == ["fsync=off:"]
    finally:
        engine.dispose()
    caplog.set_level(logging.WARNING, logger="passgeni_authority")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    AuthorityService(AuthoritySettings(state_dir=state, database_url=url)).close()
    assert "PostgreSQL has fsync=off" in caplog.text


def test_sqlite_has_no_such_warning(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert durability_warnings(conn) == []
