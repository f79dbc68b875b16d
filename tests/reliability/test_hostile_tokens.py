"""Forged tokens against the real authority over HTTP (uvicorn, SQLite, served limits).

* Session tokens at ``/api/generate-certificate``: forged (``alg: none``,
  HS256 with the public key, unknown/path-trick ``kid``, ``jku``/``x5u``),
  tampered, truncated, oversized, not a string, MAC-valid but unknown,
  expired (the injectable clock), replayed, another tenant's, raced.
* Certificate tokens at verification (``passgeni verify TOKEN --url``,
  which fetches the JWKS and the record over HTTP), signed with the
  authority's real key where the check needs a valid signature.

After every hostile request the process still answers ``/healthz``.
Core-level JWT attacks live in ``tests/unit/passgeni_core/test_verify.py``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from passgeni_authority._db import signing_keys
from passgeni_authority._sessions import SessionClaims
from passgeni_core.cli import main as passgeni_main
from passgeni_core.crypto import low_s
from tests.reliability._hostile import *  # noqa: F403 - the fixtures server, alice, bob
from tests.reliability._hostile import Tally, b64, b64json, healthy, refused, unb64json
from tests.support.authority import Server, Tenant

TRIED = Tally()


# -- session tokens at /api/generate-certificate ------------------------------------------------


def _public_pem(server: Server) -> bytes:
    jwk = server.jwks()["keys"][0]
    x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big")
    key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256(key: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(signing_input)
    return f"{signing_input.decode()}.{b64(mac.finalize())}"


def forged_sessions(server: Server, real: str) -> dict[str, Any]:
    header_part, payload_part, mac_part = real.split(".")
    header = unb64json(header_part)
    payload = unb64json(payload_part)
    pem = _public_pem(server)
    kid = server.jwks()["keys"][0]["kid"]
    other = {**payload, "sub": "somebody-else"}
    longer = {**payload, "exp": payload["exp"] + 10**6}
    return {
        "alg none": f"{b64json({'alg': 'none', 'typ': 'pgs+jwt'})}.{payload_part}.",
        "alg none, signature kept": f"{b64json({'alg': 'none', 'typ': 'pgs+jwt'})}.{payload_part}.{mac_part}",
        "HS256 with the public key": _hs256(pem, header, payload),
        "ES256 header": f"{b64json({'alg': 'ES256', 'typ': 'JWT', 'kid': kid})}.{payload_part}.{mac_part}",
        "unknown kid": _hs256(pem, {**header, "kid": "no-such-key"}, payload),
        "kid path trick": _hs256(b"", {**header, "kid": "../../../../dev/null"}, payload),
        "kid SQL": _hs256(b"x", {**header, "kid": "' OR '1'='1"}, payload),
        "jku header": f"{b64json({**header, 'jku': 'http://attacker.invalid/jwks.json'})}.{payload_part}.{mac_part}",
        "x5u header": f"{b64json({**header, 'x5u': 'http://attacker.invalid/cert.pem'})}.{payload_part}.{mac_part}",
        "payload changed (sub)": f"{header_part}.{b64json(other)}.{mac_part}",
        "payload changed (exp)": f"{header_part}.{b64json(longer)}.{mac_part}",
        "signature flipped": f"{header_part}.{payload_part}.{mac_part[:-2]}{'AA' if mac_part[-2:] != 'AA' else 'BB'}",
        "truncated": real[: len(real) // 2],
        "no signature": f"{header_part}.{payload_part}",
        "oversized": real + "A" * 20_000,
        "empty": "",
        "whitespace": f" {real} ",
        "non-ASCII": real[:-1] + "é",
        "NUL": real[:-1] + "\x00",
        "number": 12345,
        "object": {"jti": payload["jti"]},
        "list": [real],
        "null": None,
    }


def test_forged_and_malformed_session_tokens_are_refused(server: Server, alice: Tenant) -> None:
    real = alice.session()
    for name, token in forged_sessions(server, real).items():
        r = alice.post("/api/generate-certificate", {"generation_session_id": token})
        TRIED.add("session token attacks")
        refused(r, 400, {"session_invalid", "invalid_request"})
        if isinstance(token, str):
            assert r.json()["code"] == "session_invalid", name
    healthy(server)
    # None of them burnt the real session: it is redeemed once, then never again
    # (an identical retry is answered with that same certificate).
    r = alice.post("/api/generate-certificate", {"generation_session_id": real})
    assert r.status_code == 201, r.text
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": real, "label": "2"}),
        409,
        "session_already_used",
    )


def test_mac_valid_session_unknown_to_the_database_is_refused(
    server: Server, alice: Tenant, bob: Tenant
) -> None:
    """Even with the session secret, the database decides what a token can redeem:
    its request digest must be one the authority validated and stored, and its
    jti must not have a certificate yet."""
    codec = server.service.sessions.codec
    now = int(server.clock().timestamp())
    unknown_request = SessionClaims(
        jti="a" * 24, sub=alice.user, iat=now, exp=now + 60, rq="b" * 22, sc="c" * 43, an="d" * 43
    )
    refused(
        alice.post(
            "/api/generate-certificate", {"generation_session_id": codec.encode(unknown_request)}
        ),
        400,
        "session_invalid",
    )
    # Bob's session, redeemed by bob, re-signed for alice: the jti is used up.
    sid = bob.session()
    assert bob.post("/api/generate-certificate", {"generation_session_id": sid}).status_code == 201
    bobs = unb64json(sid.split(".")[1])
    replay = SessionClaims(
        jti=bobs["jti"], sub=alice.user, iat=now, exp=now + 60, rq=bobs["rq"], sc=bobs["sc"],
        an=bobs["an"],
    )  # fmt: skip
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": codec.encode(replay)}),
        409,
        "session_already_used",
    )
    # A MAC-valid session with no seed commitment (as before generation proofs) would
    # certify a value nobody can prove was generated: refused.
    seedless = SessionClaims(jti="e" * 24, sub=alice.user, iat=now, exp=now + 60, rq=bobs["rq"])
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": codec.encode(seedless)}),
        400,
        "session_invalid",
    )
    TRIED.add("session token attacks", 3)


def test_session_of_another_tenant_is_refused_and_not_burnt(alice: Tenant, bob: Tenant) -> None:
    sid = alice.session()
    refused(
        bob.post("/api/generate-certificate", {"generation_session_id": sid}),
        400,
        "session_invalid",
    )
    batch = bob.post("/api/generate-certificates", {"items": [{"generation_session_id": sid}]})
    assert batch.status_code == 201
    assert batch.json()["certificates"][0]["error"]["code"] == "session_invalid"
    assert (
        alice.post("/api/generate-certificate", {"generation_session_id": sid}).status_code == 201
    )
    TRIED.add("session token attacks", 2)


def test_replayed_and_raced_sessions_yield_one_certificate(server: Server, alice: Tenant) -> None:
    sid = alice.session()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: alice.post(
                    "/api/generate-certificate", {"generation_session_id": sid, "label": f"{i}"}
                ),
                range(16),
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 15, statuses
    for r in answers:
        if r.status_code == 409:
            refused(r, 409, "session_already_used")
    # Identical replays racing: each answered with the one certificate.
    sid3 = alice.session()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        same = list(
            pool.map(
                lambda _: alice.post("/api/generate-certificate", {"generation_session_id": sid3}),
                range(16),
            )
        )
    assert {r.status_code for r in same} == {201}
    assert len({r.json()["cert_id"] for r in same}) == 1
    # The same session twice in one batch: one certificate.
    sid2 = alice.session()
    batch = alice.post(
        "/api/generate-certificates",
        {"items": [{"generation_session_id": sid2}, {"generation_session_id": sid2}]},
    ).json()["certificates"]
    assert "cert_id" in batch[0] and batch[1]["error"]["code"] == "session_already_used"
    count = server.service.audit(
        asyncio.run(server.service.authorize(alice.key, ip=None, endpoint="test")), page_size=500
    ).total
    assert count == 3
    TRIED.add("session token attacks", 18)


# -- certificate tokens at verification ---------------------------------------------------------


def _active_key(server: Server) -> tuple[str, str]:
    with server.service.engine.connect() as conn:
        row = conn.execute(
            select(signing_keys.c.kid, signing_keys.c.signer_ref).where(
                signing_keys.c.retired_at.is_(None)
            )
        ).one()
    return row.kid, row.signer_ref


def _es256(server: Server, header: dict[str, Any], payload: dict[str, Any]) -> str:
    kid, ref = _active_key(server)
    signing_input = (
        f"{b64json({'alg': 'ES256', 'typ': 'JWT', 'kid': kid, **header})}.{b64json(payload)}"
    )
    # Signed with the authority's key as the authority signs: in low-S form.
    signature = low_s(server.service.signer.sign(ref, signing_input.encode()))
    return f"{signing_input}.{b64(signature)}"


def _verify(
    token: str, server: Server, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    capsys.readouterr()
    code = passgeni_main(["verify", token, "--url", server.url, "--json", *extra])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PASSGENI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_forged_certificates_are_refused_at_verification(
    server: Server, alice: Tenant, capsys: pytest.CaptureFixture[str], cli_env: None
) -> None:
    issued = alice.certificate()
    real = issued["token"]
    code, out = _verify(real, server, capsys)
    assert code == 0, out
    header_part, payload_part, sig_part = real.split(".")
    header = unb64json(header_part)
    payload = unb64json(payload_part)
    pem = _public_pem(server)
    now = int(time.time())  # the verifier's clock
    attacks = {
        "alg none": (
            f"{b64json({**header, 'alg': 'none'})}.{payload_part}.",
            "algorithm_not_allowed",
        ),
        "HS256 with the public key": (
            _hs256(pem, {**header, "alg": "HS256"}, payload),
            "algorithm_not_allowed",
        ),
        "unknown kid": (_es256(server, {"kid": "no-such-kid"}, payload), "unknown_key"),
        "kid path trick": (
            _es256(server, {"kid": "../../keys/" + header["kid"]}, payload),
            "unknown_key",
        ),
        "jku header": (
            _es256(server, {"jku": f"{server.url}/.well-known/jwks.json"}, payload),
            "forbidden_header",
        ),
        "x5u header": (
            _es256(server, {"x5u": "http://attacker.invalid/x.pem"}, payload),
            "forbidden_header",
        ),
        "payload changed": (
            f"{header_part}.{b64json({**payload, 'entropy_bits': 512.0})}.{sig_part}",
            "bad_signature",
        ),
        "truncated": (real[:-20], {"bad_signature", "malformed_token"}),
        "oversized": (f"{header_part}.{payload_part}{'A' * 20_000}.{sig_part}", "malformed_token"),
        "expired": (
            _es256(server, {}, {**payload, "iat": now - 3 * 86400, "exp": now - 86400}),
            "certificate_expired",
        ),
        "future nbf": (
            _es256(server, {}, {**payload, "nbf": now + 86400}),
            "certificate_not_yet_valid",
        ),
        "wrong iss": (
            _es256(server, {}, {**payload, "iss": "https://evil.example"}),
            "wrong_issuer",
        ),
    }
    for name, (token, want) in attacks.items():
        code, out = _verify(token, server, capsys)
        TRIED.add("certificate token attacks")
        wants = {want} if isinstance(want, str) else want
        assert code == 1, (name, code, out)
        assert any(f"[{w}]" in out for w in wants), (name, out)
        assert "Traceback" not in out
    healthy(server)


def test_expired_session_is_refused(server: Server, alice: Tenant) -> None:
    # Last but one in the module: it moves the authority's clock forward for good.
    sid = alice.session()
    server.clock.advance(61)
    r = alice.post("/api/generate-certificate", {"generation_session_id": sid})
    refused(r, 410, "session_expired")
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": sid}),
        410,
        "session_expired",
    )
    TRIED.add("session token attacks", 2)


def test_report_what_was_tried() -> None:
    """Runs last in this module: the counts go to docs/reliability.md."""
    TRIED.report()
