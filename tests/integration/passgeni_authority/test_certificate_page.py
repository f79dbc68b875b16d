"""The public certificate page in a real browser: headless Chromium loads the served
page, the assertions are on what it renders (``document.body.innerText``), and a
full-page screenshot of each kind of page is kept under pytest's tmp dir.

Also over plain HTTP: the 404 a browser gets (a page) and the one an API client
gets (``{code, message}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from passgeni_authority.embedded import EmbeddedAuthority
from passgeni_core import EMBEDDED_ISSUER_NOTE, GENERATOR_ID
from passgeni_core.crypto import unverified_payload
from passgeni_core.model import GenerationParameters, breach_list, get_preset
from tests.support import Chromium
from tests.support.authority import Server, plain_session
from tests.support.seeds import commitment

#: What Chromium sends for a navigation.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)
PNG = b"\x89PNG\r\n\x1a\n"


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _row(text: str, label: str) -> str:
    """The rendered table row whose first cell is ``label`` (cells tab-separated)."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if cells[0] == label and len(cells) > 1:
            return " | ".join(cells[1:])
    raise AssertionError(f"no row {label!r} in the page")


def test_valid_and_revoked_pages_as_a_browser_renders_them(
    authority: Server, make_tenant: Any, chromium: Chromium, tmp_path: Path
) -> None:
    t = make_tenant()
    cert = t.certificate(
        "pci-dss",
        GenerationParameters.for_preset("pci-dss", length=14, exclude="@:/").to_dict(),
        target={"system": "vault", "path": "secret/app/db#password"},
        label="orders <b>db</b>",
    )
    claims = unverified_payload(cert["token"])
    valid = chromium.capture(cert["cert_url"], screenshot=tmp_path / "valid.png")
    text = valid.text
    assert valid.screenshot is not None and valid.screenshot.read_bytes()[:8] == PNG
    assert valid.title == f"PassGeni certificate {cert['cert_id']} (valid)"
    # Status first, no banner: nothing to warn about.
    assert "Status: VALID" in text and "Revoked:" not in text and "embedded" not in text
    pci = get_preset("pci-dss")
    assert _row(text, "Certified for") == pci.standard
    assert pci.standard in _row(text, "Standards met").split(", ")
    assert pci.citation in text and pci.honesty_note in text
    assert _row(text, "Label") == "orders <b>db</b>"  # text, never markup
    assert _row(text, "Stored at") == "vault: secret/app/db#password"
    # Parameters in words, as rendered.
    assert _row(text, "Length") == "14 characters"
    assert _row(text, "Excluded characters") == "@:/"
    assert _row(text, "Uppercase letters") == "allowed, not required (26 characters)"
    assert _row(text, "Character classes in every password") == "at least 3 of the 4"
    assert _row(text, "Breach-list check") == f"yes (zxcvbn list, {len(breach_list()):,} entries)"
    for literal in ("True", "False", "None", "null"):
        assert literal not in text.split("Certificate (ES256 JWT)")[0].split(), literal
    # The generation proof and who vouches for what.
    assert _row(text, "Proof") == "generation provable"
    assert _row(text, "Generator") == GENERATOR_ID
    assert _row(text, "Seed commitment") == claims["generation"]["seed_commitment"]
    assert _row(text, "Authority nonce") == claims["generation"]["nonce"]
    assert _row(text, "Check").startswith("passgeni prove URI")
    assert _row(text, "Client's host in FIPS mode") == "no | Declared by the client"
    assert _row(text, "Issuer") == authority.url  # the details row
    assert f"Issuer\t{authority.url}\tObserved by the authority" in text
    assert cert["token"] in text

    t.post(f"/api/certificates/{cert['cert_id']}/revoke", {"reason": "leaked in a CI log"})
    revoked = chromium.capture(cert["cert_url"], screenshot=tmp_path / "revoked.png")
    lines = _lines(revoked.text)
    # The banner comes before everything else on the page.
    assert lines[0] == "Revoked: do not rely on this certificate"
    assert "Reason: leaked in a CI log." in lines[1]
    assert "Status: REVOKED" in lines
    assert revoked.screenshot is not None and revoked.screenshot.read_bytes()[:8] == PNG
    # On paper too: the banner, the proof and the token are all printed.
    printed = chromium.capture(cert["cert_url"], media="print")
    assert _lines(printed.text)[0] == "Revoked: do not rely on this certificate"
    assert cert["token"] in printed.text and "Generation proof" in printed.text


def test_an_embedded_issuers_page_says_so_before_anything_else(
    chromium: Chromium, tmp_path: Path
) -> None:
    with EmbeddedAuthority(state_dir=tmp_path / "state") as embedded:
        http = plain_session()
        http.headers["Authorization"] = f"Bearer {embedded.api_key}"
        r = http.post(
            f"{embedded.base_url}/api/generate",
            json={"compliance_standard": "soc2", "seed_commitment": commitment()},
        )
        assert r.status_code == 200, r.text
        sid = r.json()["generation_session_id"]
        r = http.post(
            f"{embedded.base_url}/api/generate-certificate", json={"generation_session_id": sid}
        )
        assert r.status_code == 201, r.text
        cert = r.json()
        page = chromium.capture(
            f"{embedded.base_url}/cert/{cert['cert_id']}", screenshot=tmp_path / "embedded.png"
        )
        issuer = embedded.issuer
    lines = _lines(page.text)
    assert lines[0].startswith(f"This certificate was {EMBEDDED_ISSUER_NOTE}.")
    assert issuer.startswith("embedded:") and issuer in lines[0]
    assert _row(page.text, "Issuer") == f"{issuer} (embedded, throwaway authority)"
    assert page.title.endswith("(valid, embedded authority)")
    assert page.screenshot is not None and page.screenshot.read_bytes()[:8] == PNG


def test_a_browser_gets_a_404_page_and_an_api_client_the_json(
    authority: Server, chromium: Chromium, tmp_path: Path
) -> None:
    missing = f"{authority.url}/cert/pg_{'a' * 24}"
    page = chromium.capture(missing, screenshot=tmp_path / "not-found.png")
    assert _lines(page.text)[0] == "No such certificate"
    assert f"pg_{'a' * 24}" in page.text
    http = plain_session()
    r = http.get(missing, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "No such certificate" in r.text
    # An id that cannot be one, with markup in it: a 404 page, the id escaped.
    r = http.get(f"{authority.url}/cert/pg_%3Cb%3Ex", headers={"Accept": "text/html"})
    assert r.status_code == 404 and "pg_&lt;b&gt;x" in r.text and "<b>x" not in r.text


@pytest.mark.parametrize("accept", ["*/*", "application/json"])
def test_api_clients_keep_the_json_404(authority: Server, accept: str) -> None:
    headers = {"Accept": accept}
    r = plain_session().get(f"{authority.url}/cert/pg_{'b' * 24}", headers=headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    assert r.json()["code"] == "not_found" and set(r.json()) == {"code", "message"}
