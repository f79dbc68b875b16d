"""Offline revocation end to end: provision, cache the signed status list, verify with no
network; revoke, refresh the list, verify offline again -> revoked (exit 1,
``certificate_revoked``). Real authority (uvicorn + SQLite), real CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from passgeni_core import InvalidRequest, provision
from tests.support import free_port
from tests.support.authority import Live, live_authority
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_authority(tmp_path_factory.mktemp("authority")) as authority:
        yield authority


def test_revoke_refresh_verify_offline(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.perf_counter()
    code, out, _ = run(capsys, "provision", "--preset", "soc2", "--json", *live.flags())
    assert code == 0
    issued = json.loads(out)
    token_file = tmp_path / "cert.jwt"
    token_file.write_text(issued["token"])
    jwks_file = tmp_path / "jwks.json"
    with live.client() as client:
        jwks_file.write_text(json.dumps(client.jwks_document()))
    lists = tmp_path / "status.jwt"
    code, out, err = run(capsys, "status-list", "fetch", "--out", str(lists), *live.flags())
    assert code == 0 and "status/0" in out and "wrote 1 signed status list" in err
    assert jwt.get_unverified_header(lists.read_text().strip())["typ"] == "statuslist+jwt"

    # From here on no authority is reachable: verification is fully offline.
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PASSGENI_URL", dead)
    offline = [
        "verify", f"@{token_file}", "--jwks", str(jwks_file), "--issuer", live.url,
        "--status-list", str(lists),
    ]  # fmt: skip
    code, out, err = run(capsys, *offline)
    assert code == 0, err
    assert "VALID; not revoked per status list" in out
    code, out, _ = run(capsys, *offline, "--json")
    assert json.loads(out)["status_list"]["revoked"] is False

    monkeypatch.delenv("PASSGENI_URL")
    code, _, _ = run(capsys, "revoke", issued["cert_id"], "--reason", "leaked", *live.flags())
    assert code == 0
    code, out, _ = run(capsys, "status-list", "fetch", "--out", str(lists), "--json", *live.flags())
    assert code == 0 and json.loads(out)["status_lists"][0]["revoked"] >= 1

    monkeypatch.setenv("PASSGENI_URL", dead)
    code, out, err = run(capsys, *offline)
    assert code == 1 and out == ""
    assert err.startswith("passgeni: error [certificate_revoked]:") and err.count("\n") == 1
    print(f"revoke -> refresh -> offline verify: {time.perf_counter() - started:.2f}s")


def test_status_list_file_problems_are_clear(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "provision", "--preset", "hipaa", "--json", *live.flags())
    token = json.loads(out)["token"]
    jwks = tmp_path / "jwks.json"
    with live.client() as client:
        jwks.write_text(json.dumps(client.jwks_document()))
        good = client.get_status_list(client.status_list_uris()[0])
    base = ["verify", token, "--jwks", str(jwks), "--issuer", live.url, "--status-list"]

    empty = tmp_path / "empty.jwt"
    empty.write_text("# nothing cached\n")
    code, _, err = run(capsys, *base, str(empty))
    assert code == 2 and "[invalid_request]" in err

    missing = tmp_path / "absent.jwt"
    code, _, err = run(capsys, *base, str(missing))
    assert code == 2 and "cannot read status list file" in err

    head, payload, sig = good.split(".")
    forged = tmp_path / "forged.jwt"
    forged.write_text(f"{head}.{payload}.{sig[:-4]}AAAA\n")
    code, _, err = run(capsys, *base, str(forged))
    assert code == 1 and "[bad_signature]" in err

    # Comments and blank lines are skipped; the list is picked by its ``sub``.
    (tmp_path / "ok.jwt").write_text(f"# cached\n\n{good}\n")
    code, out, _ = run(capsys, *base, str(tmp_path / "ok.jwt"))
    assert code == 0 and "not revoked per status list" in out


def test_client_maps_the_public_issuer_url_to_the_served_one(tmp_path: Path) -> None:
    """With a stable issuer (embedded default) the list URI names the issuer, not the
    ephemeral port; the client fetches it from where it reaches the authority, and
    refuses URIs of other hosts."""
    with (
        live_authority(tmp_path / "state", issuer_is_base_url=False) as other,
        other.client() as client,
    ):
        result = provision(client, "soc2")
        status = jwt.decode(result.token, options={"verify_signature": False})["status"]
        uri = status["status_list"]["uri"]
        assert uri.startswith(other.embedded.issuer) and not uri.startswith(other.url)
        token = client.get_status_list(uri)
        assert jwt.decode(token, options={"verify_signature": False})["sub"] == uri
        with pytest.raises(InvalidRequest):
            client.get_status_list("https://elsewhere.example/status/0")
        with pytest.raises(InvalidRequest):
            client.get_status_list(f"{other.embedded.issuer}/status/0?x=1")
