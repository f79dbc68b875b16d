"""`passgeni provision / verify / revoke / audit`, configuration and plugin commands.

Remote commands run against the real authority (uvicorn on 127.0.0.1, the
``real_authority`` fixture of ``test_provision.py``) through ``main()`` and
through the installed ``passgeni`` console script in a subprocess; embedded
mode runs the real ``EmbeddedAuthority``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import (
    EMBEDDED_ISSUER_NOTE,
    decode_seed,
    verify_certificate,
    verify_provenance,
)
from tests.support import free_port
from tests.support.scripted_authority import secret_forms
from tests.unit.passgeni_core.cli_helpers import (
    clean_env,  # noqa: F401 - an autouse fixture
    embedded_entry_points,
    one_line_error,
    run,
)

from .test_provision import RealAuthority, running_authority

EXE = Path(sys.executable).with_name("passgeni")


def remote(auth: RealAuthority, key: str | None = None) -> list[str]:
    return ["--url", auth.url, "--api-key", key or auth.api_key]


@pytest.fixture(scope="module")
def real_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAuthority]:
    with running_authority(Path(tmp_path_factory.mktemp("authority"))) as authority:
        yield authority


def test_unreachable_authority_is_exit_3_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "audit", "--url", url, "--api-key", "pgk_very_secret")
    assert code == 3 and out == ""
    one_line_error(err, "authority_unavailable")
    assert url in err and "pgk_very_secret" not in err


def provision_json(
    capsys: pytest.CaptureFixture[str], auth: RealAuthority, *extra: str
) -> tuple[dict[str, Any], str]:
    code, out, err = run(capsys, "provision", "--preset", "soc2", "--json", *remote(auth), *extra)
    assert code == 0, err
    return json.loads(out), err


def test_provision_json_never_prints_the_password_unless_asked(
    real_authority: RealAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    data, err = provision_json(capsys, real_authority, "--label", "cli-test")
    assert "password" not in data and "seed" not in data and "binding_key" not in data
    assert data["cert_url"].startswith(real_authority.url + "/cert/")
    assert data["label"] == "cli-test" and data["generation"]["seed_commitment"]
    assert "nobody holds the certified credential" in err and data["cert_id"] in err

    code, out, err = run(
        capsys, "provision", "--preset", "soc2", *remote(real_authority), "--target-system", "vault",
        "--target-path", "secret/x#pw",
    )  # fmt: skip
    assert code == 0 and "cert id" in out and "vault" not in err

    shown, err = provision_json(capsys, real_authority, "--show-password")
    assert "nobody holds" not in err
    jwks = json.dumps({"keys": [k for k in _jwks(real_authority)["keys"]]})
    cert = verify_certificate(shown["token"], jwks, issuer=real_authority.url)
    verify_provenance(cert, shown["password"], decode_seed(shown["seed"]))


def _jwks(auth: RealAuthority) -> dict[str, Any]:
    from passgeni_core import AuthorityClient

    return AuthorityClient(auth.url).jwks_document()


def test_provision_show_password_text_mode_is_scriptable(
    real_authority: RealAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "provision", "--preset", "nist-800-63b", "--show-password", *remote(real_authority)
    )
    assert code == 0
    assert len(out.splitlines()) == 1  # PW=$(passgeni provision ... --show-password)
    assert "cert id" in err and out.strip() not in err


def test_provision_credential_file(
    real_authority: RealAuthority, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cred.json"
    data, err = provision_json(capsys, real_authority, "--credential-file", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["cert_id"] == data["cert_id"] and stored["password"]
    assert "password" not in data and "nobody holds" not in err
    for form in secret_forms(stored["password"], decode_seed(stored["seed"])):
        assert form.decode("latin-1") not in json.dumps(data) + err

    before = len(real_authority.proxy.sent)
    code, _, err = run(
        capsys, "provision", "--preset", "soc2", *remote(real_authority),
        "--credential-file", str(path),
    )  # fmt: skip
    assert code == 2 and "already exists" in err
    assert len(real_authority.proxy.sent) == before  # refused before any request


def test_verify_revoke_audit_round_trip(
    real_authority: RealAuthority, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data, _ = provision_json(capsys, real_authority, "--label", "round-trip")
    token, cert_id, cert_url = data["token"], data["cert_id"], data["cert_url"]
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(_jwks(real_authority)))

    # Fully offline: a token and a JWKS file.
    code, out, _ = run(
        capsys, "verify", token, "--jwks", str(jwks_file), "--issuer", real_authority.url, "--json"
    )
    assert code == 0 and json.loads(out)["checked_online"] is False
    # A token, JWKS fetched from the configured authority.
    code, out, _ = run(capsys, "verify", token, "--url", real_authority.url)
    assert code == 0 and "VALID" in out and "revocation not checked" in out
    # By URL (no configuration needed) and by id.
    code, out, _ = run(capsys, "verify", cert_url, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["status"] == "valid" and summary["cert_id"] == cert_id
    code, out, _ = run(capsys, "verify", cert_id, "--url", real_authority.url, "--online")
    assert code == 0 and "authority status: valid" in out

    # Another tenant cannot revoke it, and cannot learn it exists.
    code, _, err = run(
        capsys, "revoke", cert_id, "--reason", "mine now",
        *remote(real_authority, real_authority.other_key),
    )  # fmt: skip
    assert code == 4
    one_line_error(err, "not_found")

    code, out, _ = run(
        capsys,
        "revoke",
        cert_id,
        "--reason",
        "credential leaked",
        "--json",
        *remote(real_authority),
    )
    record = json.loads(out)
    assert code == 0 and record["status"] == "revoked"
    assert record["revocation_reason"] == "credential leaked" and record["revoked_at"]

    # Offline verification cannot know; --online, the URL and the id all do.
    code, _, _ = run(
        capsys, "verify", token, "--jwks", str(jwks_file), "--issuer", real_authority.url
    )
    assert code == 0
    for argv in (
        ["verify", token, "--online", "--url", real_authority.url],
        ["verify", cert_url],
        ["verify", cert_id, "--url", real_authority.url, "--json"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "", argv
        one_line_error(err, "certificate_revoked")
        assert "credential leaked" in err

    code, out, _ = run(capsys, "audit", "--status", "revoked", "--json", *remote(real_authority))
    page = json.loads(out)
    assert code == 0 and cert_id in {i["cert_id"] for i in page["items"]}
    assert all(i["status"] == "revoked" for i in page["items"])
    code, out, _ = run(capsys, "audit", "--standard", "soc2", *remote(real_authority))
    assert code == 0 and cert_id in out and "total" in out


def test_verify_refuses_a_token_from_another_issuer(
    real_authority: RealAuthority, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = provision_json(capsys, real_authority)
    code, _, err = run(
        capsys,
        "verify",
        data["token"],
        "--url",
        real_authority.url,
        "--issuer",
        "https://x.example",
    )
    assert code == 1
    one_line_error(err, "wrong_issuer")


def test_console_script_subprocess(real_authority: RealAuthority, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PASSGENI_URL": real_authority.url,
        "PASSGENI_API_KEY": real_authority.api_key,
        "PASSGENI_CONFIG": str(tmp_path / "none.toml"),
    }
    (tmp_path / "none.toml").write_text("")
    proc = subprocess.run(
        [str(EXE), "provision", "--preset", "pci-dss", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "password" not in data and data["compliance_standard"] == "PCI-DSS"
    verify = subprocess.run(
        [str(EXE), "verify", data["cert_url"], "--online"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and "authority status: valid" in verify.stdout
    bad = subprocess.run(
        [str(EXE), "revoke", data["cert_id"], "--reason", "x", "--api-key", "pgk_wrong"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 4 and "[unauthenticated]" in bad.stderr
    assert "Traceback" not in bad.stderr and "pgk_wrong" not in bad.stderr


@pytest.fixture
def embedded_entry_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the ``passgeni.embedded`` lookup at the real class, state in tmp."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    ep = EntryPoint("default", "passgeni_authority.embedded:EmbeddedAuthority", "passgeni.embedded")
    embedded_entry_points(monkeypatch, [ep])


@pytest.mark.usefixtures("embedded_entry_point")
def test_embedded_provision_revoke_audit(capsys: pytest.CaptureFixture[str]) -> None:
    # fips-140-3 works embedded: the embedded authority is not FIPS-strict.
    code, out, err = run(capsys, "provision", "--preset", "fips-140-3", "--json", "--embedded")
    assert code == 0, err
    data = json.loads(out)
    assert "FIPS-140-3" in data["standards_met"] and "password" not in data
    # Marked: the issuer is no URL, the cert URL says so, and stderr warns.
    assert data["cert_url"].startswith("embedded:") and "/cert/" in data["cert_url"]
    assert f"warning: {data['cert_url'].split('/cert/')[0]}: {EMBEDDED_ISSUER_NOTE}" in err
    code, out, _ = run(capsys, "audit", "--json", "--embedded")
    assert code == 0 and data["cert_id"] in {i["cert_id"] for i in json.loads(out)["items"]}
    code, out, _ = run(
        capsys, "revoke", data["cert_id"], "--reason", "test", "--json", "--embedded"
    )
    assert code == 0 and json.loads(out)["status"] == "revoked"


@pytest.mark.usefixtures("embedded_entry_point")
def test_embedded_certificates_verify_in_a_later_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "provision", "--preset", "soc2", "--json", "--embedded")
    assert code == 0, err
    cert_id = json.loads(out)["cert_id"]
    # Asked for through the environment this time: the same state, the same issuer.
    monkeypatch.setenv("PASSGENI_URL", "embedded")
    code, out, err = run(capsys, "verify", cert_id, "--online")
    assert code == 0, err
    assert "issuer" in out and EMBEDDED_ISSUER_NOTE in out


def test_embedded_console_script_subprocess(tmp_path: Path) -> None:
    """A fresh machine: no URL, no key, no network. `passgeni provision` refuses and
    writes nothing; with --embedded it works, its certificate marked as embedded."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSGENI_", "XDG_"))} | {
        "HOME": str(home),
    }
    proc = subprocess.run(
        [str(EXE), "provision", "--preset", "fips-140-3", "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("passgeni: error [authority_not_configured]:")
    assert list(home.rglob("*")) == []  # no database, keys or API key under HOME
    proc = subprocess.run(
        [str(EXE), "provision", "--preset", "fips-140-3", "--json", "--embedded"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["compliance_standard"] == "FIPS-140-3"
    assert data["cert_url"].startswith("embedded:")
    assert (home / ".local" / "share" / "passgeni" / "embedded-id").exists()
