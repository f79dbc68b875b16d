"""The browser generator (``/generate``, ``/generate/certified``) in real headless Chromium.

* The JavaScript port is the core's generator: SHAKE-256 against ``hashlib``, the published
  vectors of ``docs/generator.md`` (read from the document) reproduced in the browser, and
  the exact entropy and standards the page computes equal to the core's.
* Zero-knowledge mode makes no request once loaded (recorded by the DevTools ``Network``
  domain; the page's CSP forbids one even when asked), certified mode sends only the
  parameters, the seed commitment and the API key: the password and the seed appear in no
  request, and the certificate re-derives the password shown.
* Desktop and mobile screenshots are kept under ``build/screenshots/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from passgeni_core import derive_password, seed_commitment, verify_certificate
from passgeni_core.model import GenerationParameters, entropy_report, list_presets, standards_met
from tests.support import REPO_ROOT, Chromium
from tests.support.authority import Server, plain_session
from tests.support.browser import DESKTOP, MOBILE, BrowserPage

SHOTS = REPO_ROOT / "build" / "screenshots" / "generator"
VIEWPORTS = {"desktop": DESKTOP, "mobile": MOBILE}


def _published_vectors() -> list[tuple[str, dict[str, Any], str, str, str, str]]:
    rows = []
    text = (REPO_ROOT / "docs" / "generator.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 6 and cells[1].startswith("`{"):
            name, params, seed, nonce, commitment, password = (
                c.strip("`").replace("\\|", "|") for c in cells
            )
            rows.append((name, json.loads(params), seed, nonce, commitment, password))
    return rows


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def page(chromium: Chromium, authority: Server) -> Any:
    with BrowserPage.open(chromium) as p:
        p.goto(f"{authority.url}/generate")
        yield p


def test_shake256_in_the_browser_is_hashlib_shake_256(page: BrowserPage) -> None:
    for size in (0, 1, 135, 136, 137, 272, 1000):
        data = bytes(range(256)) * 4
        data = data[:size]
        got = page.evaluate(
            f"Array.from(PassGeni.shake256Digest(new Uint8Array({list(data)}), 300))"
        )
        assert bytes(got) == hashlib.shake_256(data).digest(300), size
    # Read in pieces, the stream is one sequence.
    pieces = page.evaluate(
        "(() => { const x = PassGeni.shake256(new Uint8Array([1, 2, 3]));"
        " return [...x.read(5), ...x.read(200), ...x.read(1)]; })()"
    )
    assert bytes(pieces) == hashlib.shake_256(b"\x01\x02\x03").digest(206)


def test_the_published_vectors_are_reproduced_in_the_browser(page: BrowserPage) -> None:
    vectors = _published_vectors()
    assert len(vectors) >= 3 and any("exact path" in v[0] for v in vectors)
    for name, params, seed, nonce, commitment, password in vectors:
        got = page.evaluate(
            "(async () => { const hex = (h) => Uint8Array.from(h.match(/../g), (b) => parseInt(b, 16));"
            f" const p = {json.dumps(params)};"
            f" return [PassGeni.page.derivePassword(p, hex('{seed}'), hex('{nonce}')),"
            f" await PassGeni.page.seedCommitment(hex('{seed}'))]; }})()"
        )
        assert got == [password, commitment], name


ENTROPY_CASES: list[dict[str, Any]] = [
    *({"preset": p.id} for p in list_presets()),
    {"preset": "nist-800-63b", "length": 8},  # breach-listed 8-character words subtracted
    {"preset": "pci-dss", "length": 12, "exclude": "@/\"'\\:"},
    {"preset": "hipaa", "length": 40, "exclude_lookalikes": True},
    {"preset": "soc2", "length": 256},
]


@pytest.mark.parametrize("case", ENTROPY_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_entropy_and_standards_shown_are_the_cores(page: BrowserPage, case: dict[str, Any]) -> None:
    options = {k: v for k, v in case.items() if k != "preset"}
    expected = GenerationParameters.for_preset(case["preset"], **options)
    got = page.evaluate(
        f"(() => {{ const p = PassGeni.page.forPreset({json.dumps(case['preset'])}, {json.dumps(options)});"
        " return {p, e: PassGeni.page.entropy(p), met: PassGeni.page.standardsMet(p)}; })()"
    )
    report = entropy_report(expected)
    assert got["p"] == expected.to_dict()
    assert got["e"]["entropy_bits"] == report.bits
    assert got["e"]["naive_entropy_bits"] == report.naive_bits
    assert int(got["e"]["outcomes"]) == report.outcomes
    assert got["met"] == standards_met(expected)
    # The exact path, too, when the parameters take it.
    exact = GenerationParameters(length=12, min_digits=10)
    got_exact = page.evaluate(f"PassGeni.page.entropy({json.dumps(exact.to_dict())}).entropy_bits")
    assert got_exact == entropy_report(exact).bits


def test_a_preset_the_adjustments_break_is_refused_with_the_reason(page: BrowserPage) -> None:
    page.fill("#exclude", "0123456789")
    assert "every digits character is excluded" in page.text("#facts")
    page.click("#generate")
    page.wait_for("!document.getElementById('error').hidden")
    assert "cannot be met" in page.text("#error")
    assert page.evaluate("document.getElementById('result').hidden")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_zero_knowledge_mode_generates_locally_and_makes_no_request(
    chromium: Chromium, authority: Server, viewport: str
) -> None:
    with BrowserPage.open(chromium) as page:
        page.viewport(*VIEWPORTS[viewport])
        page.goto(f"{authority.url}/generate")
        # Everything the page loads, it loads first: itself and its four scripts.
        loaded = [r.url.removeprefix(authority.url) for r in page.requests]
        assert loaded[0] == "/generate" and all(u.startswith("/assets/") for u in loaded[1:]), (
            loaded
        )
        page.clear_requests()
        page.fill("#preset", "hipaa")
        page.fill("#length", "20")
        page.fill("#exclude", "@:/")
        page.click("#generate")
        password = page.wait_for("document.getElementById('password').textContent")
        params = GenerationParameters.for_preset("hipaa", length=20, exclude="@:/")
        assert params.admits(password)
        text = page.text()
        assert "Shown once" in text and password in text
        report = entropy_report(params)
        assert f"{report.bits:.2f} bits exact entropy (naive {report.naive_bits:.2f})" in text
        # FIPS 140-3 is said of the parameters only, not of the browser's random source.
        assert "fips-140-3 (by its parameters: this browser's random source is not known" in text
        page.screenshot(SHOTS / f"zero-knowledge-{viewport}.png")
        # A second password is a different one (and replaces the first on the page).
        page.click("#generate")
        page.wait_for(
            f"(t => t !== '' && t !== {json.dumps(password)})"
            "(document.getElementById('password').textContent)"
        )
        # The browser forbids the page any request (CSP connect-src 'none'), even when asked.
        refused = page.evaluate("fetch('/healthz').then(() => 'sent', (e) => 'refused: ' + e.name)")
        assert refused == "refused: TypeError"
        assert page.requests == []


def _certified_run(page: BrowserPage, authority: Server, key: str) -> dict[str, str]:
    page.goto(f"{authority.url}/generate/certified")
    page.clear_requests()
    page.fill("#preset", "pci-dss")
    page.fill("#length", "18")
    page.fill("#api-key", key)
    page.fill("#label", "browser test")
    page.fill("#target-system", "vault")
    page.fill("#target-path", "secret/web/db#password")
    page.click("#generate")
    page.wait_for(
        "document.getElementById('cert-url').textContent || !document.getElementById('error').hidden"
    )
    assert page.evaluate("document.getElementById('error').hidden"), page.text("#error")
    values: dict[str, str] = page.evaluate(
        "({password: document.getElementById('password').textContent,"
        " seed: document.getElementById('seed').textContent,"
        " cert_url: document.getElementById('cert-url').textContent})"
    )
    return values


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_certified_mode_runs_the_protocol_and_the_password_never_leaves(
    chromium: Chromium, authority: Server, make_tenant: Any, viewport: str
) -> None:
    tenant = make_tenant()
    with BrowserPage.open(chromium) as page:
        page.viewport(*VIEWPORTS[viewport])
        got = _certified_run(page, authority, tenant.key)
        page.screenshot(SHOTS / f"certified-{viewport}.png")
        requests = page.requests
        text = page.text()
    password, seed_text = got["password"], got["seed"]
    seed = base64.urlsafe_b64decode(seed_text + "=")
    assert "Shown once" in text and "the certificate lists:" in text
    # Two requests to this authority, nothing else; neither carries the password or the seed.
    assert [(r.method, r.url.removeprefix(authority.url)) for r in requests] == [
        ("POST", "/api/generate"),
        ("POST", "/api/generate-certificate"),
    ]
    for request in requests:
        for secret in (password, seed_text, seed.hex(), _b64(seed)):
            assert not request.carries(secret)
        assert request.headers["Authorization"] == f"Bearer {tenant.key}"
    opened = json.loads(requests[0].body)
    assert sorted(opened) == ["compliance_standard", "parameters", "seed_commitment"]
    assert opened["seed_commitment"] == seed_commitment(seed)
    # The certificate verifies and re-derives exactly the password the page showed.
    cert_id = got["cert_url"].rsplit("/", 1)[1]
    record = plain_session().get(f"{authority.url}/api/certificates/{cert_id}", timeout=10).json()
    cert = verify_certificate(
        record["token"], authority.jwks(), issuer=authority.url, now=authority.clock()
    )
    params = GenerationParameters.from_dict(cert.claims.parameters)
    assert params == GenerationParameters.for_preset("pci-dss", length=18)
    nonce = base64.urlsafe_b64decode(cert.claims.generation.nonce + "=")
    assert derive_password(params, seed, nonce) == password
    assert record["label"] == "browser test"
    assert record["target"] == {"system": "vault", "path": "secret/web/db#password"}


def test_certified_mode_with_a_bad_key_shows_the_refusal_and_no_password(
    chromium: Chromium, authority: Server
) -> None:
    with BrowserPage.open(chromium) as page:
        page.goto(f"{authority.url}/generate/certified")
        page.fill("#api-key", "pg_not-a-key")
        page.click("#generate")
        page.wait_for("!document.getElementById('error').hidden")
        assert page.text("#error").startswith("invalid_api_key") or "key" in page.text("#error")
        assert page.evaluate("document.getElementById('result').hidden")
        assert page.evaluate("document.getElementById('password').textContent") == ""


def test_copy_puts_the_password_on_the_clipboard(chromium: Chromium, authority: Server) -> None:
    with BrowserPage.open(chromium) as page:
        page.grant_clipboard(authority.url)
        page.goto(f"{authority.url}/generate")
        page.clear_requests()
        page.click("#generate")
        password = page.wait_for("document.getElementById('password').textContent")
        page.click("#copy")
        page.wait_for("document.getElementById('copied').textContent")
        assert page.text("#copied") == "Password copied."
        assert page.evaluate("navigator.clipboard.readText()") == password
        assert page.requests == []
