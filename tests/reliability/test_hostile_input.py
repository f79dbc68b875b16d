"""Hostile input against the real authority over HTTP (uvicorn, SQLite, served limits).

* Schemathesis against ``/openapi.json`` (bounded examples per operation):
  never a 5xx, every error a JSON ``{code, message}``.
* Session tokens at ``/api/generate-certificate``: forged (``alg: none``,
  HS256 with the public key, unknown/path-trick ``kid``, ``jku``/``x5u``),
  tampered, truncated, oversized, not a string, MAC-valid but unknown,
  expired (the injectable clock), replayed, another tenant's, raced.
* Certificate tokens at verification (``passgeni verify TOKEN --url``,
  which fetches the JWKS and the record over HTTP), signed with the
  authority's real key where the check needs a valid signature.
* Parameters and bodies: lengths 0/negative/huge, unknown classes, Unicode,
  control characters and lone surrogates in custom sets, 10 MB (declared and
  chunked), deep nesting, duplicate keys, NaN, non-UTF-8, non-objects.

After every hostile request the process still answers ``/healthz``.
Core-level JWT attacks live in ``tests/unit/passgeni_core/test_verify.py``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import select

from passgeni_authority import AuthoritySettings, RateLimits
from passgeni_authority._db import signing_keys
from passgeni_authority._sessions import SessionClaims
from passgeni_authority.embedded import EmbeddedAuthority
from passgeni_core.cli import main as passgeni_main
from tests.support.authority import FakeClock, Server, Tenant

TRIED: dict[str, int] = {}
#: Schemathesis examples per operation (bounded for make test).
EXAMPLES = 30


def _count(kind: str, n: int = 1) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + n


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def unb64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state_dir = tmp_path_factory.mktemp("hostile-authority")
    clock = FakeClock()
    settings_ = AuthoritySettings(
        state_dir=state_dir,
        clock=clock,
        fips_strict=True,
        rate_limits=RateLimits(),
        trusted_proxies=("127.0.0.1",),
    )
    with EmbeddedAuthority(settings=settings_, issuer_is_base_url=True) as embedded:
        yield Server(embedded=embedded, clock=clock, state_dir=state_dir)


_ip = iter(range(1, 1_000_000))


def tenant(server: Server) -> Tenant:
    user = f"h-{secrets.token_hex(5)}"
    key = server.service.create_api_key(user, rate_limit=1_000_000).key
    n = next(_ip)
    return Tenant(server=server, user=user, key=key, ip=f"10.99.{n >> 8 & 255}.{n & 255}")


@pytest.fixture
def alice(server: Server) -> Tenant:
    return tenant(server)


@pytest.fixture
def bob(server: Server) -> Tenant:
    return tenant(server)


def healthy(server: Server) -> None:
    r = requests.get(f"{server.url}/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def refused(response: requests.Response, status: int | set[int], code: str | set[str]) -> None:
    codes = {code} if isinstance(code, str) else code
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] in codes, body
    assert isinstance(body["message"], str) and 0 < len(body["message"]) <= 1000


# -- schemathesis -------------------------------------------------------------------------------


def test_openapi_fuzz_never_5xx_and_errors_are_code_message(server: Server) -> None:
    """Schemathesis: every operation of /openapi.json, bounded examples each."""
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    who = tenant(server)
    headers = {"Authorization": f"Bearer {who.key}", "X-Forwarded-For": who.ip}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(base_url=server.url, headers=headers, timeout=30)
            _count("schemathesis requests")
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"code", "message"}, body
                assert isinstance(body["code"], str) and isinstance(body["message"], str)

        fuzz()
    healthy(server)


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
        _count("session token attacks")
        refused(r, 400, {"session_invalid", "invalid_request"})
        if isinstance(token, str):
            assert r.json()["code"] == "session_invalid", name
    healthy(server)
    # None of them burnt the real session: it is redeemed once, then never again.
    r = alice.post("/api/generate-certificate", {"generation_session_id": real})
    assert r.status_code == 201, r.text
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": real}),
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
        jti="a" * 24, sub=alice.user, iat=now, exp=now + 60, rq="b" * 22
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
    replay = SessionClaims(jti=bobs["jti"], sub=alice.user, iat=now, exp=now + 60, rq=bobs["rq"])
    refused(
        alice.post("/api/generate-certificate", {"generation_session_id": codec.encode(replay)}),
        409,
        "session_already_used",
    )
    _count("session token attacks", 2)


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
    _count("session token attacks", 2)


def test_replayed_and_raced_sessions_yield_one_certificate(server: Server, alice: Tenant) -> None:
    sid = alice.session()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: alice.post("/api/generate-certificate", {"generation_session_id": sid}),
                range(16),
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 15, statuses
    for r in answers:
        if r.status_code == 409:
            refused(r, 409, "session_already_used")
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
    assert count == 2
    _count("session token attacks", 18)


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
    signature = server.service.signer.sign(ref, signing_input.encode())
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
        _count("certificate token attacks")
        wants = {want} if isinstance(want, str) else want
        assert code == 1, (name, code, out)
        assert any(f"[{w}]" in out for w in wants), (name, out)
        assert "Traceback" not in out
    healthy(server)


# -- parameters and bodies ----------------------------------------------------------------------

SOC2 = {"length": 20, "upper": True, "lower": True, "digits": True, "special": True}


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("length 0", {**SOC2, "length": 0}),
        ("length -1", {**SOC2, "length": -1}),
        ("length 10^9", {**SOC2, "length": 10**9}),
        ("length 10^400", {**SOC2, "length": 10**400}),
        ("length 20.5", {**SOC2, "length": 20.5}),
        ("length '20'", {**SOC2, "length": "20"}),
        ("length true", {**SOC2, "length": True}),
        ("length null", {**SOC2, "length": None}),
        ("unknown class", {**SOC2, "emoji": True}),
        ("class not a bool", {**SOC2, "upper": "yes"}),
        ("min > length", {**SOC2, "min_upper": 30}),
        ("negative minimum", {**SOC2, "min_digits": -5}),
        (
            "no class",
            {"length": 20, "upper": False, "lower": False, "digits": False, "special": False},
        ),
        ("special NUL", {**SOC2, "special_chars": "!\x00"}),
        ("special control", {**SOC2, "special_chars": "!\x1b[31m\x07"}),
        ("special RTL override", {**SOC2, "special_chars": "!\u202e"}),
        ("special emoji", {**SOC2, "special_chars": "!\U0001f600"}),
        ("special combining", {**SOC2, "special_chars": "!e\u0301"}),
        ("special letters", {**SOC2, "special_chars": "!abc"}),
        ("special empty", {**SOC2, "special_chars": ""}),
        ("special huge", {**SOC2, "special_chars": "!" * 50_000}),
        ("exclude everything", {**SOC2, "exclude": "".join(chr(c) for c in range(33, 127))}),
        ("exclude control", {**SOC2, "exclude": "\x00\x01"}),
        ("parameters a list", [20]),
        ("parameters a string", "soc2"),
    ],
)
def test_hostile_parameters_are_refused(
    server: Server, alice: Tenant, name: str, parameters: Any
) -> None:
    r = alice.post("/api/generate", {"compliance_standard": "soc2", "parameters": parameters})
    _count("hostile parameters")
    assert r.status_code in (400, 413, 422), (name, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] in {
        "invalid_parameters",
        "length_out_of_range",
        "conflicting_parameters",
        "preset_not_met",
        "invalid_request",
    }, (name, body)
    healthy(server)


RAW_BODIES: dict[str, tuple[bytes, int | set[int]]] = {
    "lone surrogate in a custom set": (
        b'{"compliance_standard":"soc2","parameters":{"length":20,"special_chars":"!\\ud800"}}',
        422,
    ),
    "unknown preset": (b'{"compliance_standard":"../../etc/passwd"}', 404),
    "preset unicode": (b'{"compliance_standard":"soc2\\u0000"}', 404),
    "duplicate keys": (b'{"compliance_standard":"soc2","compliance_standard":"nist-800-63b"}', 400),
    "nested duplicate keys": (
        b'{"compliance_standard":"soc2","parameters":{"length":20,"length":8}}',
        400,
    ),
    "deep nesting (objects)": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400),
    "deep nesting (arrays)": (b"[" * 30_000 + b"]" * 30_000, 400),
    "NaN": (b'{"compliance_standard":"soc2","parameters":{"length":NaN}}', 400),
    "Infinity": (b'{"compliance_standard":"soc2","parameters":{"length":Infinity}}', 400),
    "not UTF-8": (b'{"compliance_standard":"soc2\xff\xfe"}', 400),
    "UTF-16": ('{"compliance_standard":"soc2"}'.encode("utf-16"), 400),
    "not JSON": (b"compliance_standard=soc2", 400),
    "empty": (b"", 400),
    "a list": (b'["soc2"]', 400),
    "a string": (b'"soc2"', 400),
    "a password field": (b'{"compliance_standard":"soc2","password":"hunter2hunter2"}', 400),
    "huge number": (
        b'{"compliance_standard":"soc2","parameters":{"length":1' + b"0" * 4000 + b"}}",
        422,
    ),
    "number beyond int parsing": (
        b'{"compliance_standard":"soc2","parameters":{"length":1' + b"0" * 50_000 + b"}}",
        400,
    ),
}


@pytest.mark.parametrize("name", sorted(RAW_BODIES))
def test_hostile_bodies_are_refused(server: Server, alice: Tenant, name: str) -> None:
    raw, status = RAW_BODIES[name]
    r = alice.http.post(
        f"{server.url}/api/generate",
        data=raw,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    _count("hostile bodies")
    refused(
        r,
        status,
        {"invalid_request", "invalid_parameters", "unknown_preset", "length_out_of_range"},
    )
    healthy(server)


def test_ten_megabyte_bodies_are_refused_before_parsing(server: Server, alice: Tenant) -> None:
    big = b'{"compliance_standard":"soc2","label":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    for path in ("/api/generate", "/api/generate-certificate", "/api/generate-certificates"):
        # Declared length.
        r = alice.http.post(
            f"{server.url}{path}",
            data=big,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        refused(r, 413, "invalid_request")

        # Chunked, no length declared: refused once 64 KiB have arrived.
        def chunks() -> Iterator[bytes]:
            for i in range(0, len(big), 1 << 16):
                yield big[i : i + (1 << 16)]

        try:
            r = alice.http.post(
                f"{server.url}{path}",
                data=chunks(),
                headers={"Content-Type": "application/json"},
                timeout=60,
            )
        except requests.ConnectionError:
            pass  # the server answered 413 and closed before the upload finished
        else:
            refused(r, 413, "invalid_request")
        _count("hostile bodies", 2)
    healthy(server)


def test_unauthenticated_and_malformed_keys_are_refused(server: Server) -> None:
    for header in (
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer pgk_aaaaaaaa_" + "A" * 43,
        "Bearer pgk_../../etc_x",
        "Bearer " + "A" * 8000,
        "Bearer pgk_aaaaaaaa_\u00e9",
    ):
        headers = {} if header is None else {"Authorization": header}
        try:
            r = requests.post(
                f"{server.url}/api/generate",
                json={"compliance_standard": "soc2"},
                headers=headers,
                timeout=30,
            )
        except UnicodeEncodeError:
            continue  # the client library itself refuses non-Latin-1 headers
        _count("hostile credentials")
        refused(r, 401, "unauthenticated")
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
    _count("session token attacks", 2)


def test_report_what_was_tried() -> None:
    """Runs last in this module: the counts go to docs/reliability.md."""
    print("hostile inputs tried:", json.dumps(TRIED, sort_keys=True))
    assert sum(TRIED.values()) > 0
