"""Offline revocation on the authority: status-list indexes in new certificates, the
signed list at /status/{id}, revocation flipping the bit, the signing-key history,
manifest signing for evidence bundles, and the 0001 -> 0002 migration.

All over real HTTP against the real app under uvicorn (the ``authority`` fixture).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import TableClause, Text, column, insert, table

from passgeni_core import (
    STATUS_LIST_TYP,
    CertificateRevoked,
    StatusList,
    check_revocation,
    verify_certificate,
    verify_status_list,
)

from .conftest import Server, Tenant, plain_session


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


def _status_list(server: Server, uri: str) -> StatusList:
    response = plain_session().get(uri, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/statuslist+jwt")
    return verify_status_list(
        response.text, server.jwks(), issuer=server.url, uri=uri, now=server.clock()
    )


def test_certificates_carry_a_status_reference_to_a_signed_list(
    authority: Server, make_tenant: Any
) -> None:
    tenant: Tenant = make_tenant()
    first = tenant.certificate()
    second = tenant.certificate()
    refs = [_claims(c["token"])["status"]["status_list"] for c in (first, second)]
    assert refs[0]["uri"] == refs[1]["uri"] == f"{authority.url}/status/0"
    assert "?" not in refs[0]["uri"]
    assert refs[0]["idx"] != refs[1]["idx"]
    # The certificate itself still verifies, and parses the reference.
    cert = verify_certificate(
        first["token"], authority.jwks(), issuer=authority.url, now=authority.clock()
    )
    assert cert.claims.status is not None and cert.claims.status.idx == refs[0]["idx"]

    response = plain_session().get(refs[0]["uri"], timeout=10)
    token = response.text
    header = jwt.get_unverified_header(token)
    assert header["typ"] == STATUS_LIST_TYP and header["alg"] == "ES256"
    payload = _claims(token)
    assert payload["sub"] == refs[0]["uri"] and payload["iss"] == authority.url
    assert payload["exp"] > payload["iat"] and payload["ttl"] > 0
    assert payload["status_list"]["bits"] == 1
    assert "max-age" in response.headers["cache-control"]
    lst = _status_list(authority, refs[0]["uri"])
    check_revocation(cert, lst)  # valid: no error

    index = plain_session().get(f"{authority.url}/status", timeout=10).json()
    assert refs[0]["uri"] in index["status_lists"]


def test_revocation_flips_the_bit_in_the_next_list(authority: Server, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    kept, revoked = tenant.certificate(), tenant.certificate()
    jwks, now = authority.jwks(), authority.clock()
    cert_kept = verify_certificate(kept["token"], jwks, issuer=authority.url, now=now)
    cert_revoked = verify_certificate(revoked["token"], jwks, issuer=authority.url, now=now)
    status = cert_revoked.claims.status
    assert status is not None  # every certificate carries a status-list reference
    uri = status.uri
    before = _status_list(authority, uri)
    check_revocation(cert_revoked, before)

    response = tenant.post(f"/api/certificates/{revoked['cert_id']}/revoke", {"reason": "leaked"})
    assert response.status_code == 200, response.text
    after = _status_list(authority, uri)
    with pytest.raises(CertificateRevoked) as info:
        check_revocation(cert_revoked, after)
    assert info.value.code == "certificate_revoked"
    check_revocation(cert_kept, after)  # its neighbour is untouched


def test_batch_issuance_hands_out_distinct_indexes(authority: Server, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    items = [{"generation_session_id": tenant.session()} for _ in range(5)]
    items.append({"generation_session_id": items[0]["generation_session_id"]})  # a replay
    response = tenant.post("/api/generate-certificates", {"items": items})
    assert response.status_code == 201, response.text
    results = response.json()["certificates"]
    assert "error" in results[-1]
    idxs = [_claims(r["token"])["status"]["status_list"]["idx"] for r in results[:-1]]
    assert len(set(idxs)) == 5


def test_unknown_lists_are_404_and_ids_are_strict(authority: Server) -> None:
    session = plain_session()
    for path in ("/status/999999", "/status/-1", "/status/01", "/status/abc"):
        response = session.get(f"{authority.url}{path}", timeout=10)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


def test_manifest_signing_needs_a_key_and_a_sha256(authority: Server, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    digest = hashlib.sha256(b"manifest").hexdigest()
    anonymous = plain_session().post(
        f"{authority.url}/api/evidence/sign-manifest", json={"manifest_sha256": digest}, timeout=10
    )
    assert anonymous.status_code == 401
    for bad in ({"manifest_sha256": "abc"}, {"manifest_sha256": digest, "x": 1}, {}):
        response = tenant.post("/api/evidence/sign-manifest", bad)
        assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    response = tenant.post("/api/evidence/sign-manifest", {"manifest_sha256": digest})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "passgeni-manifest+jwt"
    key = jwt.PyJWKSet.from_dict(authority.jwks())[header["kid"]]
    # The session's authority clock may run ahead of real time (other tests move it).
    payload = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        options={"verify_iat": False, "verify_nbf": False, "verify_exp": False},
    )
    assert payload["manifest_sha256"] == digest and payload["iss"] == authority.url
    assert payload["sub"] == tenant.user and "cert_version" not in payload


def test_signing_key_history_keeps_retired_keys(authority: Server, make_tenant: Any) -> None:
    tenant: Tenant = make_tenant()
    old = tenant.certificate()
    authority.service.rotate_keys()
    history = plain_session().get(f"{authority.url}/api/signing-keys", timeout=10).json()
    kids = [k["kid"] for k in history["keys"]]
    assert len(kids) >= 2 and [h["kid"] for h in history["history"]] == kids
    assert history["history"][0]["retired_at"] is None
    assert all(h["retired_at"] for h in history["history"][1:])
    assert _claims(old["token"]) and jwt.get_unverified_header(old["token"])["kid"] in kids
    verify_certificate(old["token"], history, issuer=authority.url, now=authority.clock())
    assert all("d" not in k for k in history["keys"])  # public keys only


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

        async def two_steps() -> Any:
            batch = await service.open_sessions(
                key.key,
                ip=None,
                endpoint="test",
                body={"compliance_standard": "soc2"},
                count=1,
                generation_attempts=1,
            )
            return await service.issue_certificate(
                key.key,
                {"generation_session_id": batch.generation_session_ids[0]},
                ip=None,
                endpoint="test",
            )

        issued = asyncio.run(two_steps())
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
