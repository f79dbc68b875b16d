"""The authority with real neighbours: OpenBao Transit signing, headless Chromium,
the embedded mode, the CLI, and a secrets-in-logs sweep over a full flow."""

from __future__ import annotations

import asyncio
import logging
import stat
import uuid
from pathlib import Path
from typing import Any

from passgeni_authority import (
    DEFAULT_PUBLIC_URL,
    AuthoritySettings,
    RateLimits,
    TransitSigner,
)
from passgeni_authority.embedded import API_KEY_FILE, ID_FILE, EmbeddedAuthority
from passgeni_core import EMBEDDED_ISSUER_NOTE, verify_certificate
from tests.support import Chromium, OpenBaoServer
from tests.support.authority import Server, plain_session
from tests.support.seeds import commitment


def _flow(base_url: str, key: str, standard: str = "soc2", **extra: Any) -> dict[str, Any]:
    http = plain_session()
    http.headers["Authorization"] = f"Bearer {key}"
    r = http.post(
        f"{base_url}/api/generate",
        json={"compliance_standard": standard, "seed_commitment": commitment(), **extra},
    )
    assert r.status_code == 200, r.text
    sid = r.json()["generation_session_id"]
    r = http.post(f"{base_url}/api/generate-certificate", json={"generation_session_id": sid})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def test_transit_signer_issues_verifiable_certificates_and_rotates(
    openbao: OpenBaoServer, tmp_path: Path
):
    mount = f"transit-{uuid.uuid4().hex[:8]}"
    openbao.hvac_client().sys.enable_secrets_engine("transit", path=mount)
    signer = TransitSigner(openbao.url, openbao.token, key_name="passgeni-test", mount_point=mount)
    assert openbao.token not in repr(signer)
    settings = AuthoritySettings(
        state_dir=tmp_path, signer=signer, rate_limits=RateLimits.unlimited(), fips_strict=False
    )
    with EmbeddedAuthority(settings=settings) as authority:
        first = _flow(authority.base_url, authority.api_key)
        jwks = plain_session().get(f"{authority.base_url}/.well-known/jwks.json").json()
        cert = verify_certificate(first["token"], jwks, issuer=authority.issuer)
        # The kid is the thumbprint of Transit's own public key, version 1.
        pem = openbao.hvac_client().secrets.transit.read_key(
            name="passgeni-test", mount_point=mount
        )["data"]["keys"]["1"]["public_key"]
        from cryptography.hazmat.primitives import serialization

        from passgeni_authority import public_jwk

        assert cert.kid == public_jwk(serialization.load_pem_public_key(pem.encode()))["kid"]
        rotated = authority.service.rotate_keys()
        second = _flow(authority.base_url, authority.api_key)
        jwks = plain_session().get(f"{authority.base_url}/.well-known/jwks.json").json()
        assert {k["kid"] for k in jwks["keys"]} == {cert.kid, rotated.kid}
        for token in (first["token"], second["token"]):
            verify_certificate(token, jwks, issuer=authority.issuer)
    # No private key ever touched the state directory.
    assert not list(tmp_path.rglob("*.pem"))


def test_certificate_page_renders_in_headless_chromium(
    authority: Server, make_tenant, chromium: Chromium, tmp_path: Path
):
    t = make_tenant()
    cert = t.certificate(label="browser <b>check</b>")
    dom = chromium.dump_dom(cert["cert_url"])
    assert f'<code id="cert-id">{cert["cert_id"]}</code>' in dom
    assert 'id="status" class="status status-valid">valid<' in dom
    assert "browser &lt;b&gt;check&lt;/b&gt;" in dom  # escaped, never markup
    assert "embedded-issuer" not in dom  # a served authority's page carries no such banner
    t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "browser test"})
    dom = chromium.dump_dom(cert["cert_url"])
    assert "status-revoked" in dom and "browser test" in dom
    shot = chromium.screenshot(cert["cert_url"], tmp_path / "cert.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_embedded_authority_runs_locally_and_keeps_its_key(tmp_path: Path):
    state = tmp_path / "state"
    with EmbeddedAuthority(state_dir=state) as authority:
        key = authority.api_key
        assert key not in repr(authority)
        key_file = state / API_KEY_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_text().strip() == key
        # Embedded is not FIPS-strict: the FIPS profile is met from the parameters,
        # and the certificate records the source was not in FIPS mode.
        cert = _flow(authority.base_url, key, "fips-140-3")
        assert "FIPS-140-3" in cert["standards_met"]
        record = plain_session().get(f"{authority.base_url}/api/certificates/{cert['cert_id']}")
        assert record.json()["entropy_source"]["fips_mode"] is False
        # No rate limits get in the way of local bulk work.
        for _ in range(12):
            _flow(authority.base_url, key)
        assert authority.service.lookup_api_key(key) is not None
        authority_issuer = authority.issuer
    assert not authority.running
    with EmbeddedAuthority(state_dir=state) as again:
        assert again.api_key == key  # reused, not a new key per start
        # A stable, marked issuer: the first run's certificate verifies against this
        # run's JWKS, though the port changed; it is no URL anybody could ask.
        drawn = (state / ID_FILE).read_text().strip()
        assert again.issuer == authority_issuer == f"embedded:{drawn}" != DEFAULT_PUBLIC_URL
        jwks = plain_session().get(f"{again.base_url}/.well-known/jwks.json").json()
        assert verify_certificate(cert["token"], jwks, issuer=again.issuer).claims.embedded_issuer
        assert cert["cert_url"] == f"embedded:{drawn}/cert/{cert['cert_id']}"
        # The page says so, above everything else.
        page = plain_session().get(f"{again.base_url}/cert/{cert['cert_id']}").text
        assert 'id="embedded-issuer"' in page and EMBEDDED_ISSUER_NOTE in page
        assert page.index("embedded-issuer") < page.index("cert-id")
        assert f"{again.base_url}/.well-known/jwks.json" in page  # links where it is served
        assert (
            again.service.audit(
                asyncio.run(again.service.authorize(key, ip=None, endpoint="test"))
            ).total
            == 13
        )


def test_no_secret_reaches_logs_or_reprs_during_a_full_flow(tmp_path: Path):
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy.engine", "alembic"]
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    for name in names:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        settings = AuthoritySettings(
            state_dir=tmp_path, rate_limits=RateLimits.unlimited(), fips_strict=False
        )
        with EmbeddedAuthority(settings=settings) as authority:
            key = authority.api_key
            http = plain_session()
            http.headers["Authorization"] = f"Bearer {key}"
            base = authority.base_url
            sid = http.post(
                f"{base}/api/generate", json={"preset": "soc2", "seed_commitment": commitment()}
            ).json()["generation_session_id"]
            cert = http.post(
                f"{base}/api/generate-certificate", json={"generation_session_id": sid}
            ).json()
            http.post(f"{base}/api/generate-certificate", json={"generation_session_id": sid})
            http.post(f"{base}/api/certificates/{cert['cert_id']}/revoke", json={"reason": "r"})
            http.get(f"{base}/api/audit")
            http.get(f"{base}/cert/{cert['cert_id']}")
            plain_session().get(f"{base}/api/audit", headers={"Authorization": f"Bearer {key}x"})
            new_key = authority.service.create_api_key("second")
            authority.service.rotate_keys()
            reprs = " ".join(
                repr(o)
                for o in (
                    authority,
                    authority.service,
                    settings,
                    new_key,
                    authority.service.sessions.codec,
                )
            )
            import sqlite3

            with sqlite3.connect(tmp_path / "authority.db") as db:
                session_secret = db.execute(
                    "SELECT value FROM authority_meta WHERE name = 'session_hmac_secret'"
                ).fetchone()[0]
    finally:
        for name, (level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
    text = "\n".join(records)
    assert "GET /api/audit" in text or "api_access" in text or "signing key" in text
    pem_bodies = [
        line
        for pem in tmp_path.glob("keys/*.pem")
        for line in pem.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    assert pem_bodies
    secrets = [key, key.split("_", 2)[2], new_key.key, session_secret, sid, *pem_bodies]
    for secret in secrets:
        assert secret not in text, "a secret reached the logs"
        assert secret not in reprs, "a secret reached a repr"
