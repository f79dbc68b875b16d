"""The certificate page's HTML, as an auditor reads it (no server: the service in process,
the page rendered from its record; hand-made records for certificates it no longer issues).

Assertions are on the text of the rendered tables and sections, parsed from the HTML:
what the page says, row by row.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings, strategies as st

from passgeni_authority import AuthorityService, AuthoritySettings
from passgeni_authority._models import CertificateRecord
from passgeni_authority._page import Pages, certificate_page, fact_rows
from passgeni_authority._page_rows import parameter_rows
from passgeni_core import GENERATOR_ID, CertificateClaims
from passgeni_core.crypto import b64url_encode, unverified_payload
from passgeni_core.model import (
    EMBEDDED_ISSUER_NOTE,
    MAPPING_VERSION,
    GenerationParameters,
    breach_list,
    get_preset,
)
from tests.support.seeds import issue_in_process

BASE = "https://authority.example.test"


class _Text(HTMLParser):
    """The page as text: each table row as a tuple of its cells, per table id, and
    every element's text by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, ...]]] = {}
        self.by_id: dict[str, str] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag == "table":
            self._table = ident or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []
        if tag not in ("meta", "br", "link"):
            self._open.append((tag, ident))
            if ident:
                self.by_id[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(tuple(self._row))
            self._row = None
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _tag, ident in self._open:
            if ident:
                self.by_id[ident] += data
        self.text.append(data)


def _parse(html: str) -> _Text:
    parsed = _Text()
    parsed.feed(html)
    return parsed


def _rows(page: _Text, table: str) -> dict[str, str]:
    return {row[0]: row[1] for row in page.tables[table]}


def _issue(
    service: AuthorityService, key: str, body: dict[str, Any], **redeem: Any
) -> CertificateRecord:
    _batch, issued = issue_in_process(service, key, body, **redeem)
    return service.get_certificate(issued.cert_id)


def _token(payload: dict[str, Any]) -> str:
    header = b64url_encode(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "k"}).encode())
    return f"{header}.{b64url_encode(json.dumps(payload).encode())}.c2ln"


def _record(**changes: Any) -> CertificateRecord:
    """A stored certificate as an older authority made it: preset ids, a binding
    commitment, no generation proof (the signature is not checked by the page)."""
    issued = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    params = GenerationParameters.for_preset("soc2").to_dict()
    claims = CertificateClaims.build(
        issuer=BASE,
        subject="old-user",
        cert_id="pg_" + "a" * 24,
        compliance_standard="soc2",
        standards_met=["nist-800-63b", "soc2", "hipaa"],
        entropy_bits=130.93,
        naive_entropy_bits=131.09,
        parameters=params,
        entropy_source={"api": "os.urandom", "kernel_source": "getrandom(2)", "fips_mode": False},
        mapping_version="2026.11-1",
        issued_at=issued,
        credential_commitment="Q" * 43,
    )
    fields: dict[str, Any] = {
        "cert_id": claims.jti,
        "cert_url": f"{BASE}/cert/{claims.jti}",
        "status": "valid",
        "revoked_at": None,
        "revocation_reason": None,
        "issued_at": issued,
        "expires_at": issued + timedelta(days=365),
        "compliance_standard": claims.compliance_standard,
        "standards_met": claims.standards_met,
        "entropy_bits": claims.entropy_bits,
        "naive_entropy_bits": claims.naive_entropy_bits,
        "parameters": params,
        "entropy_source": claims.entropy_source,
        "label": None,
        "target": None,
        "token": _token(claims.to_payload()),
        "kid": "k",
        "issuer": BASE,
        "subject": "old-user",
        "mapping_version": claims.mapping_version,
        "credential_commitment": claims.credential_commitment,
    }
    fields.update(changes)
    return CertificateRecord(**fields)


def test_a_new_certificate_reads_as_an_auditor_needs_it(tmp_path: Path) -> None:
    settings_ = AuthoritySettings(state_dir=tmp_path, public_url=BASE, fips_strict=False)
    with AuthorityService(settings_) as service:
        key = service.create_api_key("auditee").key
        record = _issue(
            service,
            key,
            {
                "compliance_standard": "HIPAA",
                "parameters": GenerationParameters.for_preset("hipaa", length=16).to_dict(),
            },
            target={"system": "vault", "path": "secret/app#password", "version": "3"},
            label="db <b>primary</b>",
        )
    html = Pages().certificate(record, base_url=BASE)
    page = _parse(html)
    details = _rows(page, "details")
    hipaa = get_preset("hipaa")
    assert details["Certified for"] == hipaa.standard == "HIPAA §164.312"
    names = details["Standards met"].split(", ")
    assert "HIPAA §164.312" in names and "NIST SP 800-63B" in names
    assert "HIPAA" not in names  # human names, not claim ids
    assert details["Stored at"] == "vault: secret/app#password (version 3)"
    assert details["Label"] == "db <b>primary</b>" and "<b>primary" not in html  # escaped
    # Every standard with its citation and honesty note, the certified one first.
    standards = page.by_id["standards"]
    assert standards.index(hipaa.title) < standards.index("NIST SP 800-63B memorized")
    for claim_id in record.standards_met:
        preset = get_preset(claim_id)
        assert preset.citation in standards and preset.honesty_note in standards
    # Parameters in words.
    params = _rows(page, "parameters")
    assert params["Length"] == "16 characters"
    assert params["Uppercase letters"] == "required, at least 1 (26 characters)"
    assert params["Excluded characters"] == "none"
    assert params["Look-alike characters"] == "allowed"
    assert params["Character classes in every password"] == "at least 4 of the 4"
    assert params["Breach-list check"] == f"yes (zxcvbn list, {len(breach_list()):,} entries)"
    for row in page.tables["parameters"] + page.tables["details"] + page.tables["facts"]:
        assert all(cell.strip() for cell in row), row  # no empty rows
        assert not {"True", "False", "None", "null", "{}"} & set(" ".join(row).split()), row
    # The generation proof, exactly the signed claims.
    claims = CertificateClaims.from_payload(json.loads(_payload_json(record.token)))
    assert claims.generation is not None
    proof = _rows(page, "proof")
    assert proof["Proof"] == "generation provable"
    assert proof["Generator"] == GENERATOR_ID
    assert proof["Seed commitment"] == claims.generation.seed_commitment
    assert proof["Authority nonce"] == claims.generation.nonce
    assert proof["Check"].startswith("passgeni prove URI")
    assert "cannot be one a person chose" in page.by_id["generation-proof"]
    # Who vouches for what: the client's randomness is its word, the rest the authority's.
    facts = {row[0]: row[1:] for row in page.tables["facts"]}
    assert facts["Client's random number generator"] == ("os.urandom", "Declared by the client")
    assert facts["Client's host in FIPS mode"] == ("no", "Declared by the client")
    assert facts["Issuer"] == (BASE, "Observed by the authority")
    assert facts["Issued at"][1] == "Observed by the authority"
    assert facts["Parameters"][0].startswith("re-validated by the authority")
    assert facts["Authority nonce"][1] == "Observed by the authority"
    # Valid and served: no banner of any kind.
    assert "status-banner" not in page.by_id and "embedded-issuer" not in page.by_id
    assert 'id="status" class="status status-valid">valid<' in html
    assert "@media print" in html and "<script" not in html and "<link" not in html
    # Nothing loaded from anywhere (air-gapped readers): no fonts, images, imports.
    for marker in ("url(", "@import", "src=", "<img", "<iframe"):
        assert marker not in html, marker


def _payload_json(token: str) -> str:
    return json.dumps(unverified_payload(token))


def test_revoked_and_expired_certificates_carry_a_banner_above_everything(
    tmp_path: Path,
) -> None:
    now = [datetime(2026, 6, 1, tzinfo=UTC)]
    settings_ = AuthoritySettings(state_dir=tmp_path, public_url=BASE, clock=lambda: now[0])
    with AuthorityService(settings_) as service:
        created = service.create_api_key("auditee")
        principal = asyncio.run(service.authorize(created.key, ip=None, endpoint="test"))
        record = _issue(service, created.key, {"compliance_standard": "soc2"})
        revoked = service.revoke_certificate(principal, record.cert_id, "leaked in a CI log")
        other = _issue(service, created.key, {"compliance_standard": "soc2"})
        now[0] += timedelta(days=400)
        expired = service.get_certificate(other.cert_id)
    assert (revoked.status, expired.status) == ("revoked", "expired")
    html = Pages().certificate(revoked, base_url=BASE)
    page = _parse(html)
    banner = page.by_id["status-banner"]
    assert "Revoked: do not rely on this certificate" in banner
    assert "leaked in a CI log" in banner and "2026-06-01T00:00:00Z" in banner
    assert html.index("status-banner") < html.index('id="cert-id"')
    html = Pages().certificate(expired, base_url=BASE)
    banner = _parse(html).by_id["status-banner"]
    assert "Expired: this certificate is no longer evidence" in banner
    assert "2027-06-01T00:00:00Z" in banner and "banner-expired" in html


def test_an_older_certificate_is_binding_only_and_names_its_standards_by_preset_id() -> None:
    html = Pages().certificate(_record(), base_url=BASE)
    page = _parse(html)
    details = _rows(page, "details")
    assert details["Certified for"] == "SOC 2 CC6.1"
    assert details["Standards met"] == "NIST SP 800-63B, SOC 2 CC6.1, HIPAA §164.312"
    proof = _rows(page, "proof")
    assert proof["Proof"] == "binding only, generation not provable"
    assert proof["Credential commitment"] == "Q" * 43
    assert "Binding only" in page.by_id["generation-proof"]
    assert "Seed commitment" not in proof
    # Issued under an earlier mapping: the page says whose citations it shows.
    assert (
        "2026.11-1" in page.by_id["mapping-note"] and MAPPING_VERSION in page.by_id["mapping-note"]
    )
    facts = {row[0]: row[2] for row in page.tables["facts"]}
    assert "Authority nonce" not in facts  # no nonce was drawn for it


def test_a_standard_the_mapping_does_not_hold_is_named_without_a_citation() -> None:
    page = _parse(
        Pages().certificate(
            _record(standards_met=("SOC2", "FUTURE-STD-9"), mapping_version=MAPPING_VERSION),
            base_url=BASE,
        )
    )
    assert _rows(page, "details")["Standards met"] == "SOC 2 CC6.1, FUTURE-STD-9"
    assert "FUTURE-STD-9" in page.by_id["standards"]
    assert "Not in this authority's mapping table" in page.by_id["standards"]
    assert "mapping-note" not in page.by_id


def test_an_embedded_issuer_keeps_its_banner() -> None:
    record = _record(issuer="embedded:3f9c0a1b2c3d4e5f")
    html = Pages().certificate(record, base_url="http://127.0.0.1:8787")
    page = _parse(html)
    assert EMBEDDED_ISSUER_NOTE in page.by_id["embedded-issuer"]
    assert html.index("embedded-issuer") < html.index('id="cert-id"')
    assert "(embedded, throwaway authority)" in _rows(page, "details")["Issuer"]


def test_the_not_found_page_names_the_id_escaped() -> None:
    html = Pages().not_found("pg_<script>x</script>", base_url=BASE)
    page = _parse(html)
    assert "No such certificate" in page.by_id["not-found"]
    assert page.by_id["cert-id"] == "pg_<script>x</script>"
    assert "<script>" not in html and f"{BASE}/.well-known/jwks.json" in html


def test_explicit_observed_and_declared_claims_are_labelled_by_their_side() -> None:
    """Where a certificate states the two sides itself, its statement is shown, and
    a signed statement replaces the page's own reading of the same fact."""
    claims = CertificateClaims.from_payload(
        {
            **CertificateClaims.from_payload(
                json.loads(_payload_json(_record().token))
            ).to_payload(),
            "observed": {"authority_fips_mode": True, "issuer": "https://x.test"},
            "declared": {"client_rng": "os.urandom", "empty": ""},
        }
    )
    facts = {f.label: (f.value, f.source) for f in fact_rows(claims)}
    assert facts["Authority fips mode"] == ("yes", "observed")
    assert facts["Issuer"] == ("https://x.test", "observed")
    assert facts["Client rng"] == ("os.urandom", "declared")
    assert "Empty" not in facts
    assert facts["Client's host in FIPS mode"] == ("no", "declared")


def test_unusual_parameters_in_words() -> None:
    params = GenerationParameters(
        length=24,
        digits=False,
        special_chars="!@#$%^&*",
        min_special=2,
        exclude="xyz",
        exclude_lookalikes=True,
        breach_check=False,
    ).to_dict()
    rows = {r.label: r.value for r in parameter_rows({**params, "later_rule": True})}
    assert rows["Digits"] == "not used"
    assert rows["Special characters"] == "required, at least 2 (only these 8: !@#$%^&*)"
    assert rows["Lowercase letters"].startswith("allowed, not required")
    assert rows["Excluded characters"] == "xyz"
    assert rows["Look-alike characters"].startswith("excluded (Il1|O0")
    assert rows["Breach-list check"] == "no"
    assert rows["Character classes in every password"] == "no rule"
    assert rows["Later rule"] == "yes"  # a parameter of a later mapping, in words
    recorded = {"list": "zxcvbn/passwords", "version": "4.4", "entries": 123, "passed": True}
    rows = {
        r.label: r.value for r in parameter_rows({**params, "breach_check": True}, breach=recorded)
    }
    assert rows["Breach-list check"] == "yes (zxcvbn list, 123 entries)"


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=8, max_value=64),
    enabled=st.lists(st.booleans(), min_size=4, max_size=4).filter(any),
    mins=st.lists(st.integers(min_value=0, max_value=2), min_size=4, max_size=4),
    exclude=st.text(alphabet="abcXYZ019!@#", max_size=4),
    lookalikes=st.booleans(),
    breach=st.booleans(),
)
def test_no_parameter_row_is_empty_or_a_python_literal(
    length: int,
    enabled: list[bool],
    mins: list[int],
    exclude: str,
    lookalikes: bool,
    breach: bool,
) -> None:
    names = ("upper", "lower", "digits", "special")
    kwargs: dict[str, Any] = {n: e for n, e in zip(names, enabled, strict=True)}
    kwargs.update({f"min_{n}": m if e else 0 for n, e, m in zip(names, enabled, mins, strict=True)})
    try:
        params = GenerationParameters(
            length=length,
            exclude=exclude,
            exclude_lookalikes=lookalikes,
            breach_check=breach,
            **kwargs,
        )
    except Exception:  # an impossible combination: not a certificate's parameters
        return
    rows = parameter_rows(params.to_dict())
    labels = [r.label for r in rows]
    assert len(labels) == len(set(labels))
    for row in rows:
        assert row.label and row.value.strip()
        assert not {"True", "False", "None"} & set(row.value.split())
    by_label = {r.label: r.value for r in rows}
    assert by_label["Character pool"] == f"{params.pool().size} characters"
    for name, label in zip(
        names,
        ("Uppercase letters", "Lowercase letters", "Digits", "Special characters"),
        strict=True,
    ):
        if not params.enabled(name):
            assert by_label[label] == "not used"
        elif params.minimum(name):
            assert by_label[label].startswith(f"required, at least {params.minimum(name)}")


def test_the_page_of_a_record_whose_claims_cannot_be_read_still_shows_the_record() -> None:
    record = _record(token="eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln")
    page = certificate_page(record)
    assert page.proof.kind == "none" and page.observed == () and page.declared == ()
    html = Pages().certificate(record, base_url=BASE)
    assert "could not be read here" in html and record.cert_id in html


def test_a_fips_claim_beyond_its_rule_is_flagged_above_everything() -> None:
    """An older authority listed FIPS 140-3 on a host that declared no FIPS mode: the page
    says so before anything else, and an honest certificate carries no such warning."""
    honest = _parse(Pages().certificate(_record(), base_url=BASE))
    assert "fips-warning" not in honest.by_id
    record = _record(standards_met=("nist-800-63b", "soc2", "fips-140-3"))
    assert record.fips_problem
    html = Pages().certificate(record, base_url=BASE)
    page = _parse(html)
    assert record.fips_problem in page.by_id["fips-warning"]
    assert "client's statement" in page.by_id["fips-warning"]
    assert html.index("fips-warning") < html.index('id="cert-id"')
