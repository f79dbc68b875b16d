"""``passgeni provenance`` / ``audit.provenance_record`` (issue #16 item 7).

Real certificates from the authority service in this process (no server), judged offline;
the content of every section, observed and declared labelled apart, no secret, the escaping
of what the client declared, the PDF, and the CLI.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings, strategies as st

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_core import (
    JWKS,
    InvalidToken,
    PassgeniError,
    get_preset,
    preset_id_for,
    provenance_record,
)
from passgeni_core.model import FIPS_RULES
from passgeni_core.testing import FakeAuthority
from tests.support.seeds import commitment
from tests.unit.passgeni_core.auditor_fixtures import clean_env, run

__all__ = ["clean_env"]

ISSUER = "https://authority.example.test"
LABEL = "db | *prod* <script>alert(1)</script>"
SECTIONS = [
    "## 1. Verification",
    "## 2. What was generated",
    "## 3. Standards met",
    "## 4. Generator and randomness contributions",
    "## 5. What the authority observed",
    "## 6. What the client declared",
    "## 7. FIPS 140-3",
    "## 8. Re-verifying offline",
    "## Appendix: the certificate token",
]


@dataclass
class Issued:
    token: str
    cert_id: str
    jwks: JWKS
    jwks_document: dict[str, Any]


def _issue(tmp: Path, *, strict: bool, body: dict[str, Any], **item: Any) -> Issued:
    flag = tmp / "fips_enabled"
    flag.write_text("1")
    settings = AuthoritySettings(
        state_dir=tmp / "state", public_url=ISSUER, fips_strict=strict, fips_flag_path=flag
    )
    with AuthorityService(settings) as service:
        key = service.create_api_key("u").key

        async def two_steps() -> Any:
            batch = await service.open_sessions(
                key,
                ip=None,
                endpoint="t",
                body={**body, "seed_commitment": commitment()},
                count=1,
                generation_attempts=1,
            )
            return await service.issue_certificate(
                key,
                {"generation_session_id": batch.generation_session_ids[0], **item},
                ip=None,
                endpoint="t",
            )

        issued = asyncio.run(two_steps())
        document = service.jwks()
    return Issued(issued.token, issued.cert_id, JWKS.coerce(document), document)


FIPS_HOST_AND_CLIENT = {
    "compliance_standard": "fips-140-3",
    "entropy_source": {"api": "os.urandom", "kernel_source": "getrandom(2)", "fips_mode": True},
}


@pytest.fixture(scope="module")
def strict_fips(tmp_path_factory: pytest.TempPathFactory) -> Issued:
    return _issue(
        tmp_path_factory.mktemp("strict"),
        strict=True,
        body=FIPS_HOST_AND_CLIENT,
        target={"system": "vault", "path": "secret/app/db#password", "version": "3"},
        label=LABEL,
    )


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Issued:
    body = {"compliance_standard": "soc2", "parameters": {"length": 20, "exclude": "@/\"\\:|",
            "min_upper": 1, "min_lower": 1, "min_digits": 1, "min_special": 1}}  # fmt: skip
    return _issue(tmp_path_factory.mktemp("lenient"), strict=False, body=body)


def _section(md: str, heading: str) -> str:
    after = md.split(heading, 1)[1]
    return after.split("\n## ", 1)[0]


def _md(issued: Issued) -> str:
    record = provenance_record(None, token=issued.token, jwks=issued.jwks, issuer=ISSUER)
    return record.render("md").decode()


def test_every_section_is_there_in_order(strict_fips: Issued) -> None:
    md = _md(strict_fips)
    assert md.startswith(f"# Provenance record of certificate {strict_fips.cert_id}")
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "| Verdict | **VALID** |" in md
    assert "offline, against the key set given, for issuer https://authority.example.test" in md


def test_observed_and_declared_are_labelled_apart(strict_fips: Issued) -> None:
    md = _md(strict_fips)
    observed = _section(md, "## 5. What the authority observed")
    assert "re-validated, and the entropy and standards recomputed" in observed
    assert "nonce from `secrets` over `getrandom(2)`" in observed
    assert "**Its host in FIPS mode**: yes" in observed
    declared = _section(md, "## 6. What the client declared")
    assert "declared by the client: os.urandom over getrandom(2), FIPS mode: yes" in declared
    # Where the client says it stored the credential, and its label, are its word too.
    assert "vault secret/app/db#password, version 3" in declared
    assert "fips\\_mode: true" in declared and "True" not in declared
    assert "declared" not in observed and "observed by" not in declared
    fips = _section(md, "## 7. FIPS 140-3")
    assert "listed under rule strict-v1" in fips
    assert FIPS_RULES["strict-v1"] in fips and "WARNING" not in fips
    contributions = _section(md, "## 4. Generator and randomness contributions")
    assert "`passgeni-shake256-v1`" in contributions
    assert "seed commitment `" in contributions and "nonce `" in contributions


def test_what_was_generated_and_the_standards_with_citations(lenient: Issued) -> None:
    md = _md(lenient)
    generated = _section(md, "## 2. What was generated")
    assert "| Length | 20 characters |" in generated
    assert "| Uppercase letters | required, at least 1 |" in generated
    # The excluded characters exactly, escaped so that none is Markdown.
    assert '| Excluded characters | @/"\\\\:\\| |' in generated
    assert "| Breach-list check | yes |" in generated
    assert "recomputed from the parameters by this verifier" in generated
    assert "None" not in generated and "True" not in generated
    claims = json.loads(base64.urlsafe_b64decode(lenient.token.split(".")[1] + "=="))
    standards = _section(md, "## 3. Standards met")
    for listed in claims["standards_met"]:
        preset = get_preset(preset_id_for(listed))
        assert f"(`{listed}`)" in standards
        assert preset.citation in standards and preset.honesty_note in standards
    fips = _section(md, "## 7. FIPS 140-3")
    assert "listed under rule lenient-v1; not established:" in fips
    assert "the client did not declare FIPS mode" in fips


def test_the_label_the_client_declared_is_text_never_markup(strict_fips: Issued) -> None:
    record = provenance_record(None, token=strict_fips.token, jwks=strict_fips.jwks, issuer=ISSUER)
    md = record.render("md").decode()
    assert "**Label**: db \\| \\*prod\\* \\<script\\>alert(1)\\</script\\>" in md
    html = record.render("html").decode()
    assert html.startswith("<!doctype html>") and "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h2>5. What the authority observed</h2>" in html


_FAKE = FakeAuthority()


@settings(max_examples=40, deadline=None)
@given(
    st.text(alphabet="*_`[]()<>|~\\!#-:/ab", min_size=1, max_size=30)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=60)
)
def test_whatever_the_client_declares_stays_text_in_the_html(label: str) -> None:
    issued = _FAKE.issue(None, preset="soc2", label=label)
    record = provenance_record(
        None, token=issued.token, jwks=JWKS.coerce(_FAKE.jwks_document()), issuer=_FAKE.issuer
    )
    html = record.render("html").decode()
    body = html.split("<h2>6. What the client declared</h2>", 1)[1].split("<h2>7.", 1)[0]
    tags = set(re.findall(r"</?([a-zA-Z][a-zA-Z0-9]*)", body))
    # Only the structure the template makes: a list, bold labels, the entropy source's items.
    assert tags <= {"ul", "li", "strong", "p"}, tags


def test_no_secret_in_any_format_and_older_certificates_say_what_they_lack() -> None:
    fake = FakeAuthority()
    issued, credential = fake.issue_generated(preset="soc2")
    record = provenance_record(None, token=issued.token, jwks=JWKS.coerce(fake.jwks_document()),
                               issuer=fake.issuer)  # fmt: skip
    seed = credential.seed
    assert credential.password and seed is not None
    forms = [credential.password, base64.urlsafe_b64encode(seed).decode().rstrip("="), seed.hex()]
    for fmt in ("md", "html"):
        text = record.render(fmt).decode()
        assert not any(secret in text for secret in forms), fmt
    pdf_text = _pdf_text(record.render("pdf"))
    assert not any(secret in pdf_text for secret in forms)
    md = record.render("md").decode()
    # This certificate has no provenance claim and a free-text entropy source.
    assert "not stated (the certificate predates the observed/declared claims)" in md
    assert "free text outside the schema: kind='os'" in md
    # It lists only soc2 (no FIPS 140-3): nothing to warn about.
    assert "WARNING" not in md


def test_a_fips_claim_beyond_its_rule_is_a_warning() -> None:
    fake = FakeAuthority()
    issued = fake.issue(None, preset="fips-140-3", standards_met=["FIPS-140-3"])
    record = provenance_record(None, token=issued.token, jwks=JWKS.coerce(fake.jwks_document()),
                               issuer=fake.issuer)  # fmt: skip
    fips = _section(record.render("md").decode(), "## 7. FIPS 140-3")
    assert "**WARNING**: the FIPS 140-3 claim goes beyond its own rule" in fips
    assert "no stated rule" in fips


def test_a_revoked_certificate_gets_a_record_saying_so_and_a_bad_one_none() -> None:
    fake = FakeAuthority()
    issued, _ = fake.issue_generated(preset="hipaa")
    fake.revoke(issued.cert_id, "leaked in a ticket")
    with fake.client() as client:
        record = provenance_record(client, cert_id=issued.cert_id)
    md = record.render("md").decode()
    assert "| Verdict | **REVOKED**: revoked at" in md and "leaked in a ticket" in md
    assert f"online, against the authority at {fake.issuer}" in md
    other = FakeAuthority()
    with pytest.raises(InvalidToken):
        provenance_record(None, token=issued.token, jwks=JWKS.coerce(other.jwks_document()),
                          issuer=fake.issuer)  # fmt: skip


def _pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    pdf = pdfium.PdfDocument(io.BytesIO(data))
    return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))


def test_the_pdf_is_a_valid_pdf_holding_the_certificate(strict_fips: Issued) -> None:
    record = provenance_record(None, token=strict_fips.token, jwks=strict_fips.jwks, issuer=ISSUER)
    text = _pdf_text(record.render("pdf"))
    assert strict_fips.cert_id in text
    assert "5. What the authority observed" in text and "6. What the client declared" in text


def test_without_fpdf2_the_pdf_error_is_one_line(
    strict_fips: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = provenance_record(None, token=strict_fips.token, jwks=strict_fips.jwks, issuer=ISSUER)
    monkeypatch.setitem(sys.modules, "fpdf", None)  # what an absent package looks like
    with pytest.raises(PassgeniError, match=r"need fpdf2: pip install 'passgeni\[auditor\]'") as e:
        record.render("pdf")
    assert "\n" not in e.value.message


@pytest.fixture
def files(strict_fips: Issued, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    token = tmp_path / "cert.jwt"
    token.write_text(strict_fips.token + "\n")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(strict_fips.jwks_document))
    yield token, jwks


def test_the_cli_writes_the_record_offline(
    files: tuple[Path, Path],
    strict_fips: Issued,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token, jwks = files
    offline = ["provenance", f"@{token}", "--jwks", str(jwks), "--issuer", ISSUER]
    code, out, err = run(capsys, *offline)
    assert code == 0 and err == ""
    assert out.startswith(f"# Provenance record of certificate {strict_fips.cert_id}")
    pdf = tmp_path / "record.pdf"
    code, out, err = run(capsys, *offline, "--out", str(pdf))
    assert (
        code == 0 and out == "" and f"wrote pdf provenance record of {strict_fips.cert_id}" in err
    )
    assert strict_fips.cert_id in _pdf_text(pdf.read_bytes())
    code, out, _ = run(capsys, *offline, "--format", "html")
    assert code == 0 and out.startswith("<!doctype html>")


def test_the_cli_refuses_in_one_line(
    files: tuple[Path, Path], strict_fips: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    token, jwks = files
    # An id with --jwks would need the authority: refused, nothing contacted.
    code, _, err = run(
        capsys, "provenance", strict_fips.cert_id, "--jwks", str(jwks), "--issuer", ISSUER
    )
    assert code == 1 and "[malformed_token]" in err and err.count("\n") == 1
    # Another issuer than the certificate's: it does not verify, so no record.
    code, out, err = run(
        capsys, "provenance", f"@{token}", "--jwks", str(jwks), "--issuer", "https://x"
    )
    assert code == 1 and out == "" and "[wrong_issuer]" in err
    # No authority configured for an id: exit 2, saying how to configure one.
    code, _, err = run(capsys, "provenance", strict_fips.cert_id)
    assert code == 2 and "[authority_not_configured]" in err
    code, _, err = run(capsys, "provenance", f"@{token}", "--status-list", str(jwks))
    assert code == 2 and "--status-list is for offline records" in err
