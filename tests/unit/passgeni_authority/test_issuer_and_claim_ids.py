"""The configurable issuer and the claim ids, on the service itself (no server).

``--issuer`` / ``PASSGENI_ISSUER`` name the authority in the ``iss`` of all it
signs; the public URL stays the base of certificate URLs. Certificates name
standards by claim id (``SOC2``) whichever name the request used.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import jwt
import pytest

from passgeni_authority import AuthorityService, AuthoritySettings, cli
from passgeni_authority._status import status_list_token
from passgeni_core import InvalidRequest, WrongIssuer, verify_certificate
from tests.support.seeds import issue_in_process

PUBLIC_URL = "https://authority.example.test"


def _issue(service: AuthorityService, key: str, body: dict[str, Any]) -> Any:
    return issue_in_process(service, key, body)


def test_the_issuer_names_the_authority_in_everything_it_signs(tmp_path: Path) -> None:
    settings = AuthoritySettings(state_dir=tmp_path, public_url=PUBLIC_URL, issuer="passgeni.ai")
    with AuthorityService(settings) as service:
        key = service.create_api_key("u").key
        _batch, issued = _issue(service, key, {"compliance_standard": "hipaa"})
        jwks = service.jwks()
        status = jwt.decode(status_list_token(service, 0), options={"verify_signature": False})
    cert = verify_certificate(issued.token, jwks, issuer="passgeni.ai")
    assert cert.claims.iss == "passgeni.ai"
    # The URLs stay the public URL's: the issuer is a name, not an address.
    assert issued.cert_url == f"{PUBLIC_URL}/cert/{issued.cert_id}"
    assert status["iss"] == "passgeni.ai" and status["sub"] == f"{PUBLIC_URL}/status/0"
    # A verifier expecting another issuer refuses the certificate.
    with pytest.raises(WrongIssuer):
        verify_certificate(issued.token, jwks, issuer=PUBLIC_URL)


def test_without_an_issuer_the_public_url_is_the_issuer(tmp_path: Path) -> None:
    settings = AuthoritySettings(state_dir=tmp_path, public_url=PUBLIC_URL + "/")
    assert settings.issuer is None and settings.effective_issuer == PUBLIC_URL
    with AuthorityService(settings) as service:
        key = service.create_api_key("u").key
        _batch, issued = _issue(service, key, {"compliance_standard": "soc2"})
        jwks = service.jwks()
    assert verify_certificate(issued.token, jwks, issuer=PUBLIC_URL).claims.iss == PUBLIC_URL


@pytest.mark.parametrize("asked", ["hipaa", "HIPAA"])
def test_certificates_name_standards_by_claim_id_whichever_name_was_asked(
    tmp_path: Path, asked: str
) -> None:
    with AuthorityService(AuthoritySettings(state_dir=tmp_path, fips_strict=False)) as service:
        key = service.create_api_key("u").key
        batch, issued = _issue(service, key, {"compliance_standard": asked})
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims["compliance_standard"] == "HIPAA" == batch.compliance_standard
    assert claims["standards_met"] == [
        "NIST-800-63B", "NIST-800-63B-4-SF", "HIPAA", "PCI-DSS", "SOC2", "ISO-27001"
    ]  # fmt: skip
    assert tuple(claims["standards_met"]) == batch.standards_met == issued.standards_met
    assert claims["cert_version"] == "2.0"


def test_issuer_from_flag_then_environment_then_public_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("PASSGENI_ISSUER", "PASSGENI_PUBLIC_URL", "PASSGENI_TRANSIT_URL"):
        monkeypatch.delenv(name, raising=False)
    base = {"state_dir": str(tmp_path), "public_url": PUBLIC_URL}
    assert cli.settings_from_environment(**base).effective_issuer == PUBLIC_URL
    monkeypatch.setenv("PASSGENI_ISSUER", "passgeni.ai")
    assert cli.settings_from_environment(**base).issuer == "passgeni.ai"
    assert cli.settings_from_environment(**base, issuer="flag.example").issuer == "flag.example"
    # `serve --issuer` goes through the same merge, and to every worker process.
    parser = argparse.ArgumentParser(prog="passgeni")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["authority", "serve", "--issuer", "cli.example"])
    assert cli.build_settings(args).issuer == "cli.example"
    assert "issuer" in cli._SERVE_KEYS
    for bad in (" passgeni.ai", "passgeni.ai\n", "x" * 257):
        with pytest.raises(InvalidRequest, match="the issuer must be printable"):
            cli.settings_from_environment(**base, issuer=bad)
    with pytest.raises(ValueError, match="issuer must be"):
        AuthoritySettings(state_dir=tmp_path, issuer=" ")
