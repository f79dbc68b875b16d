"""`passgeni presets`, `generate` and `verify`, through main() and a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from passgeni_core import GenerationParameters
from passgeni_core.cli import main

from .test_verify import ISSUER, Keys


def test_presets_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "fips-140-3" in out and "at least 3 of 4 classes" in out
    assert main(["presets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {p["id"] for p in data["presets"]} >= {"hipaa", "soc2", "nist-800-63b-4-single-factor"}
    assert all(p["citation"] for p in data["presets"])


def test_generate_prints_only_the_password_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--preset", "hipaa", "--length", "14", "--exclude", "@/\"'\\:"]) == 0
    captured = capsys.readouterr()
    password = captured.out.strip()
    assert len(password) == 14 and not set("@/\"'\\:") & set(password)
    assert GenerationParameters.for_preset("hipaa", length=14, exclude="@/\"'\\:").admits(password)
    assert "hipaa" in captured.err and password not in captured.err


def test_generate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--preset", "fips-140-3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["password"]) == 24
    assert data["standards_met"][-1] == "fips-140-3"
    assert data["entropy_source"]["api"] == "os.urandom"
    assert data["breach_check"]["passed"] is True


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["generate", "--preset", "hipaa", "--length", "1000000000"],
            "length_out_of_range",
            "between 1 and 256",
        ),
        (["generate", "--preset", "sox"], "unknown_preset", "unknown preset 'sox'"),
        (["generate", "--preset", "soc2", "--no-special"], "preset_not_met", "special is disabled"),
        (
            ["generate", "--preset", "nist-800-63b", "--no-digits", "--min-digits", "2"],
            "conflicting_parameters",
            "digits is disabled",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: str, message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"[{code}]" in err and message in err
    assert "Traceback" not in err


def test_verify_valid_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = Keys()
    claims = keys.claims()
    claims["exp"] = claims["iat"] + 10 * 365 * 86400  # valid today
    token = keys.sign(claims)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks))
    assert main(["verify", token, "--jwks", str(jwks), "--issuer", ISSUER, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cert_id"] == "pg_test1"
    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other, algorithm="ES256", headers={"kid": "k1"})
    assert main(["verify", forged, "--jwks", str(jwks), "--issuer", ISSUER]) == 1
    assert "[bad_signature]" in capsys.readouterr().err
    assert main(["verify", token, "--jwks", str(tmp_path / "nope.json"), "--issuer", ISSUER]) == 2
    assert "cannot read JWKS file" in capsys.readouterr().err


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    keys = Keys()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps(
            {"keys": [ECAlgorithm.to_jwk(keys.private.public_key(), as_dict=True) | {"kid": "k1"}]}
        )
    )
    token = keys.sign()  # checked as of issuance, so the run date does not matter
    exe = Path(sys.executable).with_name("passgeni")
    proc = subprocess.run(
        [str(exe), "verify", token, "--jwks", str(jwks), "--issuer", ISSUER, "--at-issuance"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "VALID (as of issuance)" in proc.stdout
    proc = subprocess.run(
        [str(exe), "generate", "--preset", "hipaa", "--length", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("passgeni: error [length_out_of_range]")
