"""``passgeni_authority.asgi:app`` under real ASGI servers: the uvicorn and granian CLIs.

Each server runs as a subprocess on a free 127.0.0.1 port, configured only
through the environment (a temporary state directory), and the API contract
is exercised over HTTP: a session, its certificate, the public record, the
JWKS and offline verification with the core's verifier; batches; errors as
4xx ``{code, message}``; the OpenAPI document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from passgeni_core import verify_certificate
from tests.support import REPO_ROOT, free_port, wait_until
from tests.support.seeds import with_commitments

ROOT = REPO_ROOT


def _command(server: str, port: int) -> list[str]:
    target = "passgeni_authority.asgi:app"
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _environment(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "VAULT_"))}
    # This tree's code, whatever is installed: the servers import the app by name.
    env["PYTHONPATH"] = str(ROOT)
    env["PASSGENI_STATE_DIR"] = str(state_dir)
    return env | extra


@dataclass
class Served:
    url: str
    key: str

    def post(self, path: str, body: Any, *, key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key if key is None else key}"}
        body = with_commitments(path, body) if isinstance(body, dict) else body
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=30)


@pytest.fixture(scope="module", params=["uvicorn", "granian"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    server: str = request.param
    state_dir = tmp_path_factory.mktemp(f"asgi-{server}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _environment(state_dir, PASSGENI_PUBLIC_URL=url)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "passgeni_authority",
            "create-key",
            "--user",
            "asgi",
            "--rate-limit",
            "100000",
            "--json",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]
    log = state_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(server, port), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def healthy() -> bool:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200

        wait_until(healthy, 60.0, f"{server} serving the authority", log_path=log, process=proc)
        yield Served(url=url, key=key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_certificate_end_to_end_verifies_offline(served: Served) -> None:
    r = served.post("/api/generate", {"compliance_standard": "soc2"})
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["expires_in"] == 60 and "SOC2" in ticket["standards_met"]
    r = served.post(
        "/api/generate-certificate",
        {
            "generation_session_id": ticket["generation_session_id"],
            "target": {"system": "vault", "path": "secret/app#password", "version": "1"},
            "label": "asgi",
        },
    )
    assert r.status_code == 201, r.text
    cert = r.json()
    assert cert["cert_url"] == f"{served.url}/cert/{cert['cert_id']}"
    record = served.get(f"/api/certificates/{cert['cert_id']}")
    assert record.status_code == 200
    assert record.json()["status"] == "valid" and record.json()["token"] == cert["token"]
    jwks = served.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    verified = verify_certificate(cert["token"], jwks.json(), issuer=served.url)
    assert verified.claims.jti == cert["cert_id"]
    assert verified.claims.generation is not None
    assert verified.claims.generation.nonce == ticket["authority_nonce"]
    assert verified.claims.parameters == ticket["parameters"]
    # Redeemed once only.
    again = served.post(
        "/api/generate-certificate", {"generation_session_id": ticket["generation_session_id"]}
    )
    assert again.status_code == 409 and again.json()["code"] == "session_already_used"


def test_batches(served: Served) -> None:
    r = served.post("/api/generate-batch", {"compliance_standard": "soc2", "count": 3})
    assert r.status_code == 200, r.text
    ids = r.json()["generation_session_ids"]
    assert len(set(ids)) == 3
    items = [{"generation_session_id": sid, "label": f"b{i}"} for i, sid in enumerate(ids)]
    items.insert(1, {"generation_session_id": "forged"})
    r = served.post("/api/generate-certificates", {"items": items})
    assert r.status_code == 201, r.text
    results = r.json()["certificates"]
    assert [("error" in c) for c in results] == [False, True, False, False]
    assert results[1]["error"]["code"] == "session_invalid"
    jwks = served.get("/.well-known/jwks.json").json()
    for result in (results[0], results[2], results[3]):
        assert verify_certificate(result["token"], jwks, issuer=served.url).claims.jti


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [
        ("/api/generate", {"compliance_standard": "soc2"}, "", 401, "unauthenticated"),
        ("/api/generate", {"compliance_standard": "nope"}, None, 404, "unknown_preset"),
        ("/api/generate", {"compliance_standard": "soc2", "x": 1}, None, 400, None),
        ("/api/generate-certificate", {"generation_session_id": "x"}, None, 400, None),
        ("/api/generate-batch", {"compliance_standard": "soc2", "count": 0}, None, 400, None),
        ("/api/certificates/pg_missing/revoke", {"reason": "r"}, None, 404, "not_found"),
    ],
)
def test_bad_input_is_a_4xx_code_and_message(
    served: Served, path: str, body: Any, key: str | None, status: int, code: str | None
) -> None:
    r = served.post(path, body, key=key)
    assert r.status_code == status, r.text
    data = r.json()
    assert set(data) == {"code", "message"} and data["message"]
    if code is not None:
        assert data["code"] == code
    assert served.get("/api/certificates/pg_missing").status_code == 404
    r = requests.get(f"{served.url}/api/generate", timeout=10)
    assert r.status_code == 405 and set(r.json()) == {"code", "message"}


def test_the_openapi_document_lists_the_api(served: Served) -> None:
    spec = served.get("/openapi.json").json()
    for path in (
        "/api/generate",
        "/api/generate-batch",
        "/api/generate-certificate",
        "/api/generate-certificates",
        "/api/audit",
        "/.well-known/jwks.json",
    ):
        assert path in spec["paths"], path


def test_importing_the_module_opens_and_writes_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    code = "import passgeni_authority.asgi as m; assert callable(m.app)"
    subprocess.run(
        [sys.executable, "-c", code], env=_environment(state_dir), cwd=ROOT, check=True, timeout=60
    )
    assert not state_dir.exists()


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_bad_configuration_fails_startup_with_one_line(tmp_path: Path, server: str) -> None:
    env = _environment(tmp_path, PASSGENI_TRANSIT_URL="http://127.0.0.1:1")  # no token
    proc = subprocess.run(
        _command(server, free_port()),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "passgeni: error [invalid_request]: the Transit signer needs a token" in output
    assert "Traceback" not in output


def test_serve_and_the_asgi_module_read_the_environment_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from passgeni_authority.cli import build_settings, settings_from_environment

    monkeypatch.setenv("PASSGENI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PASSGENI_PUBLIC_URL", "https://authority.test/")
    monkeypatch.setenv("PASSGENI_TRANSIT_URL", "http://127.0.0.1:8200")
    monkeypatch.setenv("PASSGENI_TRANSIT_TOKEN", "t0ken")
    monkeypatch.setenv("PASSGENI_TRANSIT_KEY", "from-env")
    monkeypatch.setenv("PASSGENI_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    none = dict.fromkeys(("database_url", "state_dir", "public_url", "transit_url", "transit_key"))
    served = build_settings(argparse.Namespace(**none))
    asgi = settings_from_environment()
    for settings in (served, asgi):
        assert settings.state_dir == tmp_path
        assert settings.public_url == "https://authority.test"
        assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
        assert getattr(settings.signer, "key_name", None) == "from-env"
        assert settings.fips_strict
    flags = build_settings(
        argparse.Namespace(
            **none | {"public_url": "https://flag.test", "transit_key": "from-flag"},
            trusted_proxy=["10.9.9.9"],
            no_fips_strict=True,
        )
    )
    assert flags.public_url == "https://flag.test"
    assert getattr(flags.signer, "key_name", None) == "from-flag"
    assert flags.trusted_proxies == ("10.9.9.9",) and not flags.fips_strict
    assert "t0ken" not in repr(flags)
