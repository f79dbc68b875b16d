"""Offline revocation on the authority: status-list indexes in new certificates, the
signed list at /status/{id}, revocation flipping the bit, the signing-key history,
manifest signing for evidence bundles, and the 0001 -> 0002 migration.

All over real HTTP against the real app under uvicorn (the ``authority`` fixture).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import TableClause, Text, column, insert, table

from tests.support.seeds import issue_in_process


def _certificates_at_0001() -> TableClause:
    # The table as revision 0001 made it (``claims`` was dropped by 0004), for
    # writing a row the way that release did.
    from passgeni_authority._db import UTCDateTime

    names = ("cert_id", "owner_user_id", "token", "claims", "kid", "compliance_standard")
    return table(
        "certificates",
        *(column(name, Text) for name in (*names, "standards_met", "status")),
        column("issued_at", UTCDateTime),
        column("expires_at", UTCDateTime),
    )


def _claims(token: str) -> dict[str, Any]:
    data: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return data


def test_migration_keeps_certificates_issued_before_status_lists(tmp_path: Path) -> None:
    """A database at revision 0001 with a certificate migrates; the old certificate keeps
    working (no status reference) and new ones get indexes from 0."""
    from alembic import command
    from alembic.config import Config

    from passgeni_authority import AuthorityService, AuthoritySettings
    from passgeni_authority._db import users
    from passgeni_authority._status import status_list_token
    from passgeni_authority._storage import _script_location, make_engine

    url = f"sqlite:///{tmp_path / 'authority.db'}"
    engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", _script_location())
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
    old_claims = json.dumps({"entropy_bits": 100.0, "standards_met": ["soc2"]})
    payload = base64.urlsafe_b64encode(old_claims.encode()).rstrip(b"=").decode()
    with engine.begin() as conn:
        conn.execute(insert(users).values(id="old-user", team_id=None, created_at=now))
        conn.execute(
            insert(_certificates_at_0001()).values(
                cert_id="pg_" + "a" * 24,
                owner_user_id="old-user",
                token=f"e30.{payload}.c2ln",
                claims=old_claims,
                kid="old",
                compliance_standard="soc2",
                standards_met=",soc2,",
                status="valid",
                issued_at=now,
                expires_at=now.replace(year=now.year + 1),
            )
        )
    engine.dispose()
    settings = AuthoritySettings(state_dir=tmp_path, database_url=url, public_url="http://a.test")
    with AuthorityService(settings) as service:
        record = service.get_certificate("pg_" + "a" * 24)
        assert record.status == "valid"
        assert _claims(status_list_token(service, 0))["sub"] == "http://a.test/status/0"
        key = service.create_api_key("new-user")

        _batch, issued = issue_in_process(service, key.key)
        token = issued.token
    assert _claims(token)["status"]["status_list"] == {"idx": 0, "uri": "http://a.test/status/0"}
    db = sqlite3.connect(tmp_path / "authority.db")
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == _head()
    db.close()


def _head() -> str:
    """The newest migration shipped (what a start migrates to)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from passgeni_authority._storage import _script_location

    cfg = Config()
    cfg.set_main_option("script_location", _script_location())
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head
