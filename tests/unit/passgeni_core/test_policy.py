"""`passgeni policy`: the written policy in Markdown, HTML and PDF.

Content comes from the same preset table as the generator (citations, honesty
notes); the PDF is rendered to an image (pypdfium2, the PDFium engine) and must
show ink on every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from passgeni_core import ROTATION, InvalidRequest, UnknownPreset, get_preset, render_policy

from .auditor_fixtures import clean_env, run

__all__ = ["clean_env"]

SECTIONS = (
    "Purpose and scope",
    "Standards and requirements",
    "Generation rules",
    "Rotation schedule",
    "Certificates",
    "Revocation",
    "Review, monitoring and evidence",
)


def test_markdown_states_each_standard_with_citation_and_honesty_note() -> None:
    md = render_policy("soc2,hipaa", "Example Corp").decode()
    assert md.startswith("# Example Corp: Password and Service Credential Policy")
    for title in SECTIONS:
        assert re.search(rf"^## \d\. {re.escape(title)}$", md, re.M), title
    for preset_id in ("soc2", "hipaa"):
        preset = get_preset(preset_id)
        assert preset.citation in md and preset.honesty_note in md
        assert preset.describe(ge="≥") in md
        assert ROTATION[preset_id].basis in md
    assert "pci-dss" not in md.split("## 3.")[0]  # only the selected standards
    assert "CSPRNG" in md and "never chosen by a person" in md
    # The combined minimum is the strictest selected (SOC 2: 16), met by the recommended preset.
    assert "**16 characters**" in md and "preset **`soc2`**" in md


def test_rotation_adopts_the_strictest_schedule() -> None:
    md = render_policy(["iso-27001", "fips-140-3"], "Gov Co").decode()
    assert "privileged accounts every\n**90 days**" in md or "every **90 days**" in md
    nist = render_policy("nist-800-63b", "Plain Co").decode()
    assert "SHOULD NOT require periodic changes" in nist


def test_html_is_escaped_and_complete() -> None:
    html = render_policy("pci-dss", "<script>alert(1)</script> & [Co](http://x)", fmt="html")
    text = html.decode()
    assert text.startswith("<!doctype html>") and "</html>" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert 'href="http://x"' not in text  # Markdown in the name is neutralised too
    assert "<table>" in text and get_preset("pci-dss").citation.split(":")[0] in text


def test_pdf_renders_to_a_non_blank_image() -> None:
    import pypdfium2 as pdfium

    data = render_policy("soc2,hipaa,fips-140-3", "Example Corp", fmt="pdf")
    assert data.startswith(b"%PDF-")
    pdf = pdfium.PdfDocument(data)
    try:
        assert len(pdf) >= 2
        for index in range(len(pdf)):
            image = pdf[index].render(scale=1.0).to_pil().convert("L")
            histogram = image.histogram()
            ink = sum(histogram[:200]) / (image.width * image.height)
            assert 0.005 < ink < 0.5, f"page {index + 1}: {ink:.4f} of the page is ink"
        text = pdf[0].get_textpage().get_text_range()
        assert "Example Corp" in text and "HIPAA" in text
    finally:
        pdf.close()


@pytest.mark.parametrize("fmt", ["md", "html", "pdf"])
def test_cli_writes_each_format(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"policy.{fmt}"
    code, stdout, err = run(
        capsys, "policy", "--standards", "soc2,hipaa", "--org", "Example Corp", "--out", str(out)
    )
    assert code == 0 and stdout == "" and f"wrote {fmt} policy" in err
    data = out.read_bytes()
    assert {"md": b"# Example Corp", "html": b"<!doctype html>", "pdf": b"%PDF-"}[fmt] in data[:40]


def test_cli_markdown_to_stdout_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "--standards", "iso-27001", "--org", "ACME")
    assert code == 0 and out.startswith("# ACME:")
    code, _, err = run(capsys, "policy", "--standards", "sox", "--org", "ACME")
    assert code == 2 and "[unknown_preset]" in err and err.count("\n") == 1
    code, _, err = run(capsys, "policy", "--standards", ",", "--org", "ACME")
    assert code == 2 and "[invalid_request]" in err
    with pytest.raises(UnknownPreset):
        render_policy("soc3", "ACME")
    with pytest.raises(InvalidRequest):
        render_policy("soc2", " ")
    with pytest.raises(InvalidRequest):
        render_policy("soc2", "ACME", fmt="docx")


def test_the_policy_says_what_the_authority_observes_and_what_the_client_declares() -> None:
    md = render_policy("soc2", "Example Corp").decode()
    certificates = md.split("## 5.")[1].split("## 6.")[0]
    assert "**observed**" in certificates and "**declared**" in certificates
    observed, declared = certificates.split("Declared by the client:")
    assert "re-validated" in observed and "nonce from its CSPRNG" in observed
    assert "entropy source" in declared and "storage location" in declared
    # The FIPS rule appears only where FIPS 140-3 is in scope, quoted from the model.
    assert "strict-v1" not in md
    fips = render_policy("soc2,fips-140-3", "Gov Co").decode()
    from passgeni_core.model import FIPS_RULES

    rule = " ".join(fips.split("**FIPS 140-3.**")[1].split("\n\n")[0].split())
    assert "`strict-v1`: " + FIPS_RULES["strict-v1"] in rule
    assert "`lenient-v1`" in rule and "not accepted as that evidence" in rule
