"""``serve --log-format json`` (issue #19 item 4): every line is a JSON object, and no secret
reaches the log. A real authority process at DEBUG (access log on) serves real flows:
certified passwords (commit-reveal), batches, failed logins with forged keys, rate-limit
refusals, revocations, views, metrics and readiness. Then every secret of the run (API
keys, the forged keys, passwords, seeds, the session HMAC secret, the signing key) is
searched for in the log: raw, base64, base64url, hex, JSON-escaped, URL-encoded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core import AuthorityClient, provision
from tests.support import LOCALHOST, REPO_ROOT, free_port, http_status, wait_until
from tests.support.authority import plain_session
from tests.support.seeds import with_commitments


def _encodings(secret: bytes) -> set[bytes]:
    forms = {
        secret,
        base64.b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
        secret.hex().upper().encode(),
    }
    with contextlib.suppress(UnicodeDecodeError):
        text = secret.decode("utf-8")
        forms.add(json.dumps(text)[1:-1].encode())
        forms.add(quote(text, safe="").encode())
        forms.add(repr(text)[1:-1].encode())
    return {f for f in forms if len(f) >= 8}


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "passgeni_authority", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=True,
    )
    return proc.stdout


def test_json_logs_are_structured_and_hold_no_secret(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "PROMETHEUS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    bulk_key = json.loads(
        _cli(
            env,
            "create-key",
            "--state-dir",
            str(state),
            "--user",
            "json-bulk",
            "--rate-limit",
            "10000",
            "--json",
        )
    )["api_key"]
    user_key = _cli(env, "create-key", "--state-dir", str(state), "--user", "json-user").strip()
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    log = tmp_path / "authority.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "serve",
                "--state-dir",
                str(state),
                "--host",
                LOCALHOST,
                "--port",
                str(port),
                "--public-url",
                url,
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    found: dict[str, bytes] = {
        "bulk API key": bulk_key.encode(),
        "bulk API key secret": bulk_key.split("_", 2)[2].encode(),
        "user API key": user_key.encode(),
        "user API key secret": user_key.split("_", 2)[2].encode(),
    }
    try:
        wait_until(
            lambda: http_status(f"{url}/healthz") == 200,
            30,
            "the authority",
            log_path=log,
            process=proc,
        )
        client = AuthorityClient(url, bulk_key, issuer=url)
        for preset in ("soc2", "pci-dss"):
            result = provision(client, preset)
            found[f"{preset} password"] = result.credential.password.encode()
            assert result.credential.seed is not None
            found[f"{preset} seed"] = result.credential.seed
            revoked = plain_session()
            revoked.headers["Authorization"] = f"Bearer {bulk_key}"
            r = revoked.post(
                f"{url}/api/certificates/{result.cert_id}/revoke",
                json={"reason": "json logs"},
                timeout=30,
            )
            assert r.status_code == 200
            assert plain_session().get(f"{url}/cert/{result.cert_id}", timeout=30).ok
        http = plain_session()
        http.headers["Authorization"] = f"Bearer {bulk_key}"
        body = with_commitments("/api/generate-batch", {"compliance_standard": "soc2", "count": 3})
        assert http.post(f"{url}/api/generate-batch", json=body, timeout=30).ok
        # Forged keys: a real prefix with a wrong secret, and a wholly made-up key.
        prefix = bulk_key.split("_")[1]
        for forged in (
            f"pgk_{prefix}_{secrets.token_urlsafe(32)}",
            f"pgk_abcdefgh_{secrets.token_urlsafe(32)}",
            f"not-a-key-{secrets.token_urlsafe(24)}",
        ):
            found[f"forged key {forged[:12]}"] = forged.encode()
            r = plain_session().get(
                f"{url}/api/audit", timeout=30, headers={"Authorization": f"Bearer {forged}"}
            )
            assert r.status_code == 401
        user = plain_session()
        user.headers["Authorization"] = f"Bearer {user_key}"
        codes = [user.get(f"{url}/api/audit", timeout=30).status_code for _ in range(8)]
        assert 429 in codes
        assert plain_session().get(f"{url}/metrics", timeout=30).ok
        assert plain_session().get(f"{url}/readyz", timeout=30).ok
        assert (
            plain_session()
            .get(f"{url}/api/certificates/pg_{'z' * 24}?secret=x", timeout=30)
            .status_code
            == 404
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    with sqlite3.connect(state / "authority.db") as db:
        for name, value in db.execute("SELECT name, value FROM authority_meta"):
            found[f"authority_meta {name}"] = (
                bytes.fromhex(value)
                if all(c in "0123456789abcdef" for c in value)
                else value.encode()
            )
    for pem in (state / "keys").glob("*.pem"):
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        found[f"signing key {pem.name}"] = key.private_numbers().private_value.to_bytes(32, "big")
        found[f"signing key PEM {pem.name}"] = b"".join(pem.read_bytes().splitlines()[1:-1])

    data = log.read_bytes()
    lines = [line for line in data.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {(e["method"], e["status"]) for e in access} >= {
        ("POST", 201),
        ("GET", 401),
        ("GET", 429),
    }
    assert all("?" not in e["path"] for e in access)
    assert any(e["logger"] == "passgeni_authority" for e in entries)  # its own lines too

    leaks = []
    for what, secret in found.items():
        for form in _encodings(secret):
            at = data.find(form)
            if at >= 0:
                leaks.append(f"{what}: {data[max(0, at - 80) : at].decode(errors='replace')}***")
    assert leaks == [], leaks
    assert len(found) >= 12
