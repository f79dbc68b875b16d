"""Storage, migrations, signing keys and the JWKS lifecycle, through the service layer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, inspect, text

from passgeni_authority import (
    AuthorityService,
    AuthoritySettings,
    LocalFileSigner,
    RateLimits,
    jwk_thumbprint,
)
from passgeni_authority._db import metadata
from passgeni_core import (
    CertificateExpired,
    UnknownKey,
    verify_certificate,
    verify_certificate_at_issuance,
)
from tests.support.authority import FakeClock
from tests.support.seeds import issue_in_process


def _service(tmp_path: Path, clock: FakeClock | None = None, **kw: Any) -> AuthorityService:
    return AuthorityService(
        AuthoritySettings(
            state_dir=tmp_path,
            clock=clock or FakeClock(),
            rate_limits=RateLimits.unlimited(),
            **kw,
        )
    )


#: The API key each test service issues with (one user per service). Keyed by the
#: service itself, weakly: an ``id()`` is reused once a service is collected, and the
#: next test's service would then get a key of another database.
_KEYS: weakref.WeakKeyDictionary[AuthorityService, str] = weakref.WeakKeyDictionary()


def _migrate(engine: Any, step: Any, revision: str) -> None:
    """Run an alembic command (``command.upgrade`` / ``downgrade``) on ``engine``."""
    from alembic.config import Config

    from passgeni_authority._storage import _script_location

    with engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", _script_location())
        cfg.attributes["connection"] = conn
        step(cfg, revision)
        conn.commit()


def _issue_with(svc: AuthorityService, key: str) -> Any:
    _batch, issued = issue_in_process(svc, key, ip="127.0.0.1")
    return issued


def _issue(svc: AuthorityService, user: str = "alice") -> Any:
    if svc not in _KEYS:
        _KEYS[svc] = svc.create_api_key(user).key
    return _issue_with(svc, _KEYS[svc])


def test_migrations_apply_on_a_fresh_database_and_match_the_schema(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with AuthorityService(
        AuthoritySettings(database_url=url, state_dir=tmp_path, clock=FakeClock())
    ):
        pass
    # Starting again on a migrated database is a no-op, not an error.
    with AuthorityService(
        AuthoritySettings(database_url=url, state_dir=tmp_path, clock=FakeClock())
    ):
        pass
    engine = create_engine(url)
    with engine.connect() as conn:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from passgeni_authority._storage import _script_location

        cfg = Config()
        cfg.set_main_option("script_location", _script_location())
        head = ScriptDirectory.from_config(cfg).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff  # the shipped migration builds exactly the declared schema
    assert {
        "users",
        "teams",
        "api_keys",
        "generation_requests",
        "certificates",
        "signing_keys",
        "usage_events",
        "rate_limit_buckets",
        "authority_meta",
    } <= set(inspect(engine).get_table_names())


def test_local_key_file_is_0600_and_kid_is_the_rfc7638_thumbprint(tmp_path: Path):
    with _service(tmp_path) as svc:
        jwk = svc.jwks()["keys"][0]
    (pem,) = (tmp_path / "keys").glob("*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.stem == jwk["kid"] == jwk_thumbprint(jwk)
    # RFC 7638 section 3.1 example, for the thumbprint function itself.
    example = {
        "kty": "EC",
        "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    digest = jwk_thumbprint(example)
    assert len(base64.urlsafe_b64decode(digest + "=")) == 32
    # A second start reuses the key: no new file, same kid.
    with _service(tmp_path) as svc:
        assert svc.jwks()["keys"][0]["kid"] == jwk["kid"]
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1


def test_retired_keys_leave_the_jwks_when_their_last_certificate_expires(tmp_path: Path):
    clock = FakeClock()
    with _service(tmp_path, clock) as svc:
        first = svc.jwks()["keys"][0]["kid"]
        old_cert = _issue(svc)
        unused = svc.rotate_keys().kid  # retired at once by the next rotation, no certificates
        current = svc.rotate_keys().kid
        kids = [k["kid"] for k in svc.jwks()["keys"]]
        assert kids == [current, first]  # unused is gone: nothing it signed can need it
        assert unused not in kids and len({first, unused, current}) == 3
        jwks = svc.jwks()
        verify_certificate(old_cert.token, jwks, issuer=svc.settings.public_url, now=clock())
        clock.advance(366 * 86400)
        assert [k["kid"] for k in svc.jwks()["keys"]] == [current]
        with pytest.raises(UnknownKey):
            verify_certificate(old_cert.token, svc.jwks(), issuer=svc.settings.public_url)
        # A historical audit still works with a JWKS saved while the key was published.
        historical = verify_certificate_at_issuance(
            old_cert.token, jwks, issuer=svc.settings.public_url
        )
        assert historical.historical
        with pytest.raises(CertificateExpired):
            verify_certificate(old_cert.token, jwks, issuer=svc.settings.public_url, now=clock())
        record = svc.get_certificate(old_cert.cert_id)
        assert record.status == "expired"


def test_certificate_row_is_durable_before_the_id_is_returned(tmp_path: Path):
    with _service(tmp_path) as svc:
        cert = _issue(svc)
        # Another connection (another process would do the same) sees it at once.
        with create_engine(svc.settings.effective_database_url).connect() as conn:
            token = conn.execute(
                text("SELECT token FROM certificates WHERE cert_id = :c"), {"c": cert.cert_id}
            ).scalar_one()
        assert token == cert.token
        payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert "password" not in payload and payload["jti"] == cert.cert_id


def test_signing_path_is_lean(tmp_path: Path):
    """Header serialised once per kid, key loaded once: a rough throughput floor."""
    import time

    with _service(tmp_path) as svc:
        kid, ref = svc.keys.active(svc.engine.connect())
        jws = svc.keys.jws
        payload = {"iss": "x", "jti": "pg_x", "n": 1}
        started = time.perf_counter()
        for _ in range(500):
            jws.token(kid, ref, payload)
        per_token = (time.perf_counter() - started) / 500
        assert len(jws._headers) == 1
        assert isinstance(svc.signer, LocalFileSigner) and len(svc.signer._keys) == 1
    assert per_token < 0.002, per_token


def test_clock_must_be_timezone_aware(tmp_path: Path):
    with pytest.raises(ValueError):
        # A naive clock is the wrong type on purpose: the runtime check is under test.
        _service(tmp_path, clock=lambda: datetime.now())  # type: ignore[arg-type]
    assert datetime.now(UTC) - timedelta(seconds=5) < FakeClock()()


def test_state_dir_permissions_keep_the_key_private(tmp_path: Path):
    with _service(tmp_path / "state"):
        pass
    keys_dir = tmp_path / "state" / "keys"
    assert stat.S_IMODE(keys_dir.stat().st_mode) & 0o077 == 0
    assert os.access(keys_dir, os.R_OK)


def test_rate_limit_bucket_survives_the_clock_going_backwards(tmp_path: Path) -> None:
    """A clock step backwards must not lock a user out for the size of the jump."""
    from passgeni_authority._db import metadata
    from passgeni_authority._ratelimit import gcra

    engine = create_engine(f"sqlite:///{tmp_path / 'rl.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        now = 2_000_000_000.0
        for _ in range(5):
            assert gcra(conn, "u", burst=5, rate=1.0, now=now) is None
        assert gcra(conn, "u", burst=5, rate=1.0, now=now) is not None  # burst spent
        earlier = now - 365 * 86400  # the clock steps back a year
        assert gcra(conn, "u", burst=5, rate=1.0, now=earlier) is None


def test_0004_keeps_claims_in_the_token_and_downgrade_restores_the_column(tmp_path: Path):
    """Dropping ``certificates.claims`` loses nothing: the page reads the same claims
    from the token, and a downgrade to 0003 rebuilds the column from the tokens."""
    from alembic import command

    from passgeni_authority._storage import make_engine

    with _service(tmp_path) as svc:
        issued = [_issue(svc) for _ in range(3)]
        before = [svc.get_certificate(c.cert_id).to_dict() for c in issued]
    assert [b["entropy_bits"] for b in before] == [c.entropy_bits for c in issued]

    engine = make_engine(f"sqlite:///{tmp_path / 'authority.db'}")

    def migrate(step: Any, revision: str) -> None:
        _migrate(engine, step, revision)

    migrate(command.downgrade, "0003")
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT cert_id, claims FROM certificates")).all())
        notnull = conn.execute(
            text("SELECT \"notnull\" FROM pragma_table_info('certificates') WHERE name='claims'")
        ).scalar_one()
    assert notnull == 1
    for cert in issued:
        payload = cert.token.split(".")[1]
        signed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        assert rows[cert.cert_id] == signed  # the exact signed JSON, byte for byte

    migrate(command.upgrade, "head")
    engine.dispose()
    with _service(tmp_path) as svc:
        after = [svc.get_certificate(c.cert_id).to_dict() for c in issued]
        # Below 0008 there is no transparency log; the upgrade rebuilds it from the stored
        # certificates (issuance order, ties by id), so only the leaf indexes may differ.
        assert all(record.pop("log") is not None for record in [*after, *before])
        assert after == before


def test_audit_pages_are_read_in_index_order(tmp_path: Path):
    """The audit's page query walks an index in its order: no temporary B-tree that
    would sort every certificate of a second (a deep page took seconds at 90,000)."""
    from sqlalchemy import event

    with _service(tmp_path) as svc:
        first = _issue(svc)
        statements: list[tuple[str, Any]] = []

        def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_a: Any) -> None:
            if "ORDER BY" in statement and "FROM certificates" in statement:
                statements.append((statement, params))

        event.listen(svc.engine, "before_cursor_execute", seen)
        principal = asyncio.run(svc.authorize(_KEYS[svc], ip="127.0.0.1", endpoint="test"))
        svc.audit(principal, page=2, page_size=10)
        event.remove(svc.engine, "before_cursor_execute", seen)
        assert len(statements) == 1
        statement, params = statements[0]
        with svc.engine.connect() as conn:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
        details = " | ".join(str(row[-1]) for row in plan)
        assert "ix_certificates_owner_issued_id" in details, details
        assert "TEMP B-TREE" not in details, details
        # Newest second first; within a second, by id (descending), as the index walks.
        more = [_issue(svc) for _ in range(3)]
        listed = [r.cert_id for r in svc.audit(principal, page_size=10).items]
        assert sorted(listed) == sorted([first.cert_id, *(c.cert_id for c in more)])
        assert listed == sorted(listed, reverse=True)


def _plans_of(svc: AuthorityService, run: Any, table: str) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement on ``table`` that ``run()`` executes."""
    from sqlalchemy import event

    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_a: Any) -> None:
        if f"FROM {table}" in statement and "count(" not in statement:
            statements.append((statement, params))

    event.listen(svc.engine, "before_cursor_execute", seen)
    try:
        run()
    finally:
        event.remove(svc.engine, "before_cursor_execute", seen)
    assert statements
    with svc.engine.connect() as conn:
        return [
            " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            for statement, params in statements
        ]


def test_0006_issuance_skips_index_entries_nothing_reads(tmp_path: Path):
    """Personal certificates have no entry in the team index, and only anomaly
    events are indexed by user; the team audit and the anomaly queries still
    read through those (partial) indexes, and 0006 downgrades and upgrades."""
    from alembic import command

    from passgeni_authority._sql import LATEST_ANOMALY as _LATEST_ANOMALY
    from passgeni_authority._storage import make_engine

    def index_sql() -> dict[str, str]:
        with create_engine(f"sqlite:///{tmp_path / 'authority.db'}").connect() as conn:
            return dict(
                conn.execute(
                    text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                    )
                ).all()
            )

    with _service(tmp_path, anomaly_threshold_24h=1) as svc:
        _issue(svc)  # personal
        team_key = svc.create_api_key("bob", team="blue").key
        team = asyncio.run(svc.authorize(team_key, ip="127.0.0.1", endpoint="test"))
        for _ in range(2):  # over the threshold of 1: an anomaly event
            _issue_with(svc, team_key)
        audit_before = svc.audit(team).to_dict()
        assert audit_before["total"] == 2 and audit_before["anomalies"]
        for plan in _plans_of(svc, lambda: svc.audit(team, page=1), "certificates"):
            assert "ix_certificates_team_issued_id" in plan and "TEMP B-TREE" not in plan, plan
        (plan,) = _plans_of(svc, lambda: svc.audit(team), "usage_events")
        assert "ix_usage_events_anomaly_user_at" in plan, plan
        with svc.engine.connect() as conn:
            since = "2000-01-01 00:00:00.000000"
            plan = " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {_LATEST_ANOMALY}", {"user_id": "bob", "since": since}
                )
            )
        assert "ix_usage_events_anomaly_user_at" in plan, plan

    indexes = index_sql()
    assert indexes["ix_certificates_team_issued_id"].endswith("WHERE team_id IS NOT NULL")
    assert indexes["ix_usage_events_anomaly_user_at"].endswith("WHERE kind = 'anomaly'")
    assert "ix_usage_events_kind_user_at" not in indexes

    engine = make_engine(f"sqlite:///{tmp_path / 'authority.db'}")

    def migrate(step: Any, revision: str) -> None:
        _migrate(engine, step, revision)

    migrate(command.downgrade, "0005")
    indexes = index_sql()
    assert "WHERE" not in indexes["ix_certificates_team_issued_id"]
    assert "ix_usage_events_kind_user_at" in indexes
    assert "ix_usage_events_anomaly_user_at" not in indexes
    migrate(command.upgrade, "head")
    engine.dispose()
    with _service(tmp_path, anomaly_threshold_24h=1) as svc:
        team = asyncio.run(svc.authorize(team_key, ip="127.0.0.1", endpoint="test"))
        audit_after = svc.audit(team).to_dict()
        # Below 0008 there is no transparency log; the upgrade rebuilds it from the stored
        # certificates (issuance second, then id), so only the leaf indexes may differ.
        for page in (audit_after, audit_before):
            assert all(item.pop("log") is not None for item in page["items"])
        assert audit_after == audit_before


def _last_expiry(tmp_path: Path) -> dict[str, Any]:
    with create_engine(f"sqlite:///{tmp_path / 'authority.db'}").connect() as conn:
        return dict(conn.execute(text("SELECT kid, last_expires_at FROM signing_keys")).all())


def test_issuance_keeps_an_expiry_bound_per_key_about_once_an_hour(tmp_path: Path):
    """``signing_keys.last_expires_at`` covers every certificate of its key, with at
    most an hour to spare, and is rewritten about once an hour, not once per commit."""
    from passgeni_authority._keys import LAST_EXPIRY_SLACK

    def bound_of(kid: str) -> datetime:
        return datetime.fromisoformat(_last_expiry(tmp_path)[kid]).replace(tzinfo=UTC)

    clock = FakeClock()
    with _service(tmp_path, clock) as svc:
        kid = svc.jwks()["keys"][0]["kid"]
        assert _last_expiry(tmp_path)[kid] is None  # signed nothing yet
        first = _issue(svc)
        bound = bound_of(kid)
        assert first.expires_at < bound <= first.expires_at + LAST_EXPIRY_SLACK
        for _ in range(3):
            clock.advance(600)
            cert = _issue(svc)
            assert cert.expires_at < bound_of(kid) == bound  # covered: not rewritten
        clock.advance(3600)
        later = _issue(svc)
        assert bound_of(kid) > bound
        assert later.expires_at < bound_of(kid) <= later.expires_at + LAST_EXPIRY_SLACK


def test_a_certificate_signed_with_a_key_another_process_retired_keeps_it_published(
    tmp_path: Path,
):
    """Two processes on one database: one still signs with its cached active key
    (for ``key_cache_seconds``) after the other rotated. That key's expiry bound
    grows to cover the certificate, so the JWKS keeps publishing the key."""
    clock = FakeClock()
    with _service(tmp_path, clock, key_cache_seconds=3600) as a:
        first = _issue(a)  # a caches the active key
        with _service(tmp_path, clock) as b:
            b.rotate_keys()
            clock.advance(2 * 3600)
            late = _issue(a)  # still signed with the key b just retired
            # The answer names no key (the wire has none): the token's header does.
            kid = jwt.get_unverified_header(first.token)["kid"]
            assert jwt.get_unverified_header(late.token)["kid"] == kid
            clock.advance(365 * 86400 - 3600)  # first's bound has passed, late's has not
            jwks = b.jwks()
            assert kid in [k["kid"] for k in jwks["keys"]]
            verify_certificate(late.token, jwks, issuer=b.settings.public_url, now=clock())


def test_0007_fills_the_expiry_bound_from_stored_certificates_and_downgrades(tmp_path: Path):
    from alembic import command

    from passgeni_authority._storage import make_engine

    clock = FakeClock()
    with _service(tmp_path, clock) as svc:
        old = svc.jwks()["keys"][0]["kid"]
        issued = [_issue(svc)]
        clock.advance(86400)
        issued.append(_issue(svc))
        svc.rotate_keys()
        jwks_before = svc.jwks()

    engine = make_engine(f"sqlite:///{tmp_path / 'authority.db'}")

    def migrate(step: Any, revision: str) -> None:
        _migrate(engine, step, revision)

    migrate(command.downgrade, "0006")
    with engine.connect() as conn:
        columns = [c["name"] for c in inspect(conn).get_columns("signing_keys")]
        indexes = [i["name"] for i in inspect(conn).get_indexes("certificates")]
    assert "last_expires_at" not in columns
    assert "ix_certificates_kid_expires" in indexes
    migrate(command.upgrade, "head")
    engine.dispose()
    bounds = _last_expiry(tmp_path)
    # Exactly the newest expiry of the key's certificates (no slack when filled).
    stored = datetime.fromisoformat(bounds[old]).replace(tzinfo=UTC)
    assert stored == max(c.expires_at for c in issued)
    assert sum(v is not None for v in bounds.values()) == 1  # the new key signed nothing
    with _service(tmp_path, clock) as svc:
        assert svc.jwks() == jwks_before
        clock.advance(365 * 86400 + 1)
        assert [k["kid"] for k in svc.jwks()["keys"]] != [k["kid"] for k in jwks_before["keys"]]
