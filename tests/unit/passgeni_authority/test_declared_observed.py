"""Declared versus observed, on the service itself (issue #16 item 4; no server).

FIPS 140-3 is listed only under the written rule the certificate states. The authority's own
FIPS mode is read from an injected flag file (``AuthoritySettings.fips_flag_path``, ``serve
--fips-flag-path``, ``PASSGENI_FIPS_FLAG_PATH``), never by patching the kernel; the client's is
its declaration. Every combination of rule x authority FIPS mode x client declaration is here.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from passgeni_authority import AuthorityService, AuthoritySettings, cli
from passgeni_authority._db import certificates
from passgeni_core import (
    EntropySource,
    InvalidEntropySource,
    PresetNotMet,
    verify_certificate,
)
from tests.support.seeds import commitment, issue_in_process

ISSUER = "https://authority.example.test"
DECLARED_FIPS = {"api": "os.urandom", "kernel_source": "getrandom(2)", "fips_mode": True}
DECLARED_PLAIN = {**DECLARED_FIPS, "fips_mode": False}


def _flag(tmp_path: Path, on: bool) -> Path:
    path = tmp_path / "fips_enabled"
    path.write_text("1\n" if on else "0\n")
    return path


def _service(tmp_path: Path, *, strict: bool, authority_fips: bool) -> AuthorityService:
    return AuthorityService(
        AuthoritySettings(
            state_dir=tmp_path / "state",
            public_url=ISSUER,
            fips_strict=strict,
            fips_flag_path=_flag(tmp_path, authority_fips),
        )
    )


def _certify(service: AuthorityService, body: dict[str, Any]) -> Any:
    key = service.create_api_key(f"u{next(_users)}").key

    _batch, issued = issue_in_process(service, key, body)
    claims = verify_certificate(issued.token, service.jwks(), issuer=ISSUER).claims
    # The public record (what the certificate page shows) carries the same claims.
    record = service.get_certificate(issued.cert_id)
    assert record.entropy_source == claims.entropy_source
    assert record.provenance == (claims.provenance.to_dict() if claims.provenance else None)
    assert record.to_dict()["provenance"] == record.provenance
    assert record.fips_problem == ""
    return claims


_users = itertools.count()
MATRIX = list(itertools.product([True, False], [True, False], [True, False]))


@pytest.mark.parametrize(("strict", "authority_fips", "client_fips"), MATRIX)
def test_fips_140_3_is_certified_only_as_the_stated_rule_allows(
    tmp_path: Path, strict: bool, authority_fips: bool, client_fips: bool
) -> None:
    declared = DECLARED_FIPS if client_fips else DECLARED_PLAIN
    body = {"compliance_standard": "fips-140-3", "entropy_source": declared}
    unmet = [
        name
        for name, held in (
            ("authority_fips_mode", authority_fips),
            ("client_fips_mode", client_fips),
        )
        if not held
    ]
    with _service(tmp_path, strict=strict, authority_fips=authority_fips) as service:
        if strict and unmet:
            with pytest.raises(PresetNotMet, match="under rule strict-v1") as refused:
                _certify(service, body)
            # The refusal says which condition failed, and only that one.
            assert ("not observed in FIPS mode" in refused.value.message) is (not authority_fips)
            assert ("did not declare FIPS mode" in refused.value.message) is (not client_fips)
            return
        claims = _certify(service, body)
    assert "FIPS-140-3" in claims.standards_met
    provenance = claims.provenance
    assert provenance is not None
    assert provenance.fips_rule == ("strict-v1" if strict else "lenient-v1")
    # Observed: the authority's own nonce source and its host's FIPS mode, as read.
    assert provenance.nonce_source == {
        "api": "secrets",
        "kernel_source": provenance.nonce_source["kernel_source"],
        "fips_mode": authority_fips,
    }
    assert provenance.parameters_revalidated is True
    # Declared: the client's word, stated as such and exactly as sent.
    assert "entropy_source" in provenance.declared
    assert EntropySource.from_claim(claims.entropy_source) == EntropySource.from_dict(declared)
    # Lenient records what it could not establish; strict has nothing to record.
    assert list(provenance.fips_unverified) == ([] if strict else unmet)
    assert claims.fips_problem() == ""


@pytest.mark.parametrize(("strict", "authority_fips", "client_fips"), MATRIX)
def test_other_presets_list_fips_only_as_the_rule_allows(
    tmp_path: Path, strict: bool, authority_fips: bool, client_fips: bool
) -> None:
    declared = DECLARED_FIPS if client_fips else DECLARED_PLAIN
    params = {"length": 24, "min_upper": 1, "min_lower": 1, "min_digits": 1, "min_special": 1}
    body = {"compliance_standard": "soc2", "parameters": params, "entropy_source": declared}
    with _service(tmp_path, strict=strict, authority_fips=authority_fips) as service:
        claims = _certify(service, body)
    listed = "FIPS-140-3" in claims.standards_met
    assert listed is ((not strict) or (authority_fips and client_fips))
    assert claims.provenance is not None and claims.fips_problem() == ""
    if not listed:
        assert claims.provenance.fips_unverified == ()


def test_the_issue_s_hsm_declaration_is_refused_before_anything_is_signed(tmp_path: Path) -> None:
    lie = {"api": "Thales Luna HSM (FIPS 140-3 L3 cert #9999)", "fips_mode": True}
    with _service(tmp_path, strict=True, authority_fips=True) as service:
        with pytest.raises(InvalidEntropySource, match=r"entropy_source\.api") as refused:
            _certify(service, {"compliance_standard": "fips-140-3", "entropy_source": lie})
        assert refused.value.http_status == 400
        with service.storage.transaction() as conn:
            assert conn.execute(select(func.count()).select_from(certificates)).scalar() == 0


def test_the_flag_is_read_once_at_start_up_from_the_configured_path(tmp_path: Path) -> None:
    with _service(tmp_path, strict=True, authority_fips=True) as service:
        _flag(tmp_path, False)  # the host cannot leave FIPS mode without a restart
        claims = _certify(
            service, {"compliance_standard": "fips-140-3", "entropy_source": DECLARED_FIPS}
        )
    assert claims.provenance is not None and claims.provenance.authority_fips_mode
    missing = AuthoritySettings(state_dir=tmp_path / "s2", fips_flag_path=tmp_path / "absent")
    with AuthorityService(missing) as service:
        # No flag file: not FIPS mode (claiming FIPS without evidence would be false evidence).
        assert service.sessions.nonce_source.fips_mode is False


def test_the_flag_path_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PASSGENI_TRANSIT_URL", raising=False)
    monkeypatch.delenv("PASSGENI_FIPS_FLAG_PATH", raising=False)
    base = {"state_dir": str(tmp_path)}
    assert cli.settings_from_environment(**base).fips_flag_path == Path(
        "/proc/sys/crypto/fips_enabled"
    )
    monkeypatch.setenv("PASSGENI_FIPS_FLAG_PATH", str(tmp_path / "env"))
    assert cli.settings_from_environment(**base).fips_flag_path == tmp_path / "env"
    parser = argparse.ArgumentParser(prog="passgeni")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["authority", "serve", "--fips-flag-path", str(tmp_path / "flag"), "--no-fips-strict"]
    )
    settings = cli.build_settings(args)
    assert settings.fips_flag_path == tmp_path / "flag" and settings.fips_rule == "lenient-v1"
    # Every worker process of `serve --workers N` gets it too.
    assert "fips_flag_path" in cli._SERVE_KEYS
    assert AuthoritySettings(state_dir=tmp_path).fips_rule == "strict-v1"


def test_the_certificate_page_shows_each_side_of_the_provenance_claim(tmp_path: Path) -> None:
    from passgeni_authority._page import Pages, fact_rows

    body = {"compliance_standard": "fips-140-3", "entropy_source": DECLARED_PLAIN}
    with _service(tmp_path, strict=False, authority_fips=True) as service:
        key = service.create_api_key("page").key

        async def two_steps() -> Any:
            batch = await service.open_sessions(
                key, ip=None, endpoint="t", body={**body, "seed_commitment": commitment()},
                count=1, generation_attempts=1,
            )  # fmt: skip
            return await service.issue_certificate(
                key,
                {
                    "generation_session_id": batch.generation_session_ids[0],
                    "target": {"system": "vault", "path": "secret/app#pw", "version": "2"},
                    "label": "<b>db</b>",
                },
                ip=None,
                endpoint="t",
            )

        issued = asyncio.run(two_steps())
        record = service.get_certificate(issued.cert_id)
        claims = verify_certificate(issued.token, service.jwks(), issuer=ISSUER).claims
    facts = {f.label: (f.value, f.source) for f in fact_rows(claims)}
    assert facts["Authority's host in FIPS mode"] == ("yes", "observed")
    assert facts["Authority's randomness source"][1] == "observed"
    assert facts["FIPS 140-3 rule"][0].startswith("lenient-v1: FIPS 140-3 is listed when")
    assert facts["FIPS 140-3 not established"] == (
        "the client did not declare FIPS mode",
        "observed",
    )
    assert facts["Client's host in FIPS mode"] == ("no", "declared")
    assert facts["Client's stated storage location"] == (
        "vault secret/app#pw, version 2",
        "declared",
    )
    assert facts["Client's label"] == ("<b>db</b>", "declared")
    html = Pages().certificate(record, base_url=ISSUER)
    assert "Authority&#39;s host in FIPS mode" in html or "Authority's host in FIPS mode" in html
    assert "<b>db</b>" not in html and "&lt;b&gt;db&lt;/b&gt;" in html
