"""A per-certificate provenance record an auditor can file (issue #16 item 7).

``provenance_record(client, token=... | cert_id=..., jwks=..., issuer=...)`` judges
the certificate with the one judge (:func:`~passgeni_core.workflows.assess_certificate`:
offline with ``client=None``, the JWKS and the issuer, or online), then
:meth:`ProvenanceRecord.render` writes what it proves: what was generated (the
parameters, the exact entropy, recomputed here from them), the standards met
with their citations and honesty notes (``presets.json``), the generator and the
randomness contributions (the client's seed commitment, the authority's nonce),
what the authority observed, what the client declared, the FIPS rule, and the
commands that re-verify it offline. The token itself closes the record, so the
file is enough to check it again.

Only public facts: a certificate holds no password and no seed, and neither
does the record. Values the client declared (label, target, a free-text
entropy source of an older certificate) are escaped, never markup.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from .._errors import InvalidRequest, InvalidToken, PassgeniError
from ..client import AuthorityClient
from ..crypto import JWKS, StatusList
from ..model import (
    CLASS_NAMES,
    EMBEDDED_ISSUER_NOTE,
    MAPPING_VERSION,
    CertificateClaims,
    GenerationParameters,
    entropy_report,
    get_preset,
    preset_id_for,
    standards_met,
)
from ..workflows import Verdict, assess_certificate
from ._render import html_to_pdf, jinja, markdown_to_html
from ._statements import source_statements

__all__ = ["PROVENANCE_FORMATS", "ProvenanceRecord", "provenance_record"]

PROVENANCE_FORMATS: tuple[str, ...] = ("md", "html", "pdf")
_CLASS_LABELS = {
    "upper": "Uppercase letters",
    "lower": "Lowercase letters",
    "digits": "Digits",
    "special": "Special characters",
}
#: A store URI safe to print inside a shell command as is.
_SAFE_URI = re.compile(r"[A-Za-z0-9_.@+=/#:-]{1,600}")
_TOKEN_LINE = 76


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parameter_rows(
    raw: dict[str, Any],
) -> tuple[list[tuple[str, str]], GenerationParameters | None]:
    """Human labels for the certified parameters, and the parsed parameters (if complete)."""
    try:
        params = GenerationParameters.from_dict(raw)
        complete = params.to_dict() == raw
    except PassgeniError:
        params, complete = None, False
    if params is None or not complete:
        # Not the canonical form (an older certificate): shown as stated, never reinterpreted.
        return [(str(k), str(v)) for k, v in sorted(raw.items())], None
    rows = [("Length", f"{params.length} characters")]
    for name in CLASS_NAMES:
        if not params.enabled(name):
            rows.append((_CLASS_LABELS[name], "not used"))
        elif params.minimum(name) >= 1:
            rows.append((_CLASS_LABELS[name], f"required, at least {params.minimum(name)}"))
        else:
            rows.append((_CLASS_LABELS[name], "allowed"))
    specials = raw.get("special_chars")
    rows.append(
        ("Special character set", "the default set" if specials is None else f"{specials} only")
    )
    rows.append(("Excluded characters", raw.get("exclude") or "none"))
    rows.append(("Look-alike characters excluded", "yes" if params.exclude_lookalikes else "no"))
    if params.min_classes_present:
        rows.append(("Character classes present", f"at least {params.min_classes_present}"))
    rows.append(("Breach-list check", "yes" if params.breach_check else "no"))
    return rows, params


def _shown(value: Any) -> str:
    """A claim value for people: JSON's spelling (``true``, ``null``), never Python's."""
    return value if isinstance(value, str) else json.dumps(value)


def _standard_rows(claims: CertificateClaims) -> list[dict[str, str]]:
    out = []
    for listed in claims.standards_met:
        try:
            preset = get_preset(preset_id_for(listed))
        except PassgeniError:
            out.append({"id": listed, "name": listed, "requirement": "", "citation": "",
                        "note": f"not in mapping {MAPPING_VERSION} of this verifier"})  # fmt: skip
            continue
        out.append(
            {
                "id": listed,
                "name": preset.title,
                "requirement": preset.describe(ge="≥"),
                "citation": preset.citation,
                "note": preset.honesty_note,
            }
        )
    return out


def _recomputed(claims: CertificateClaims, params: GenerationParameters | None) -> str:
    """The entropy and standards recomputed here from the parameters, against the claims."""
    if params is None:
        return "not recomputed: the parameters are not in the canonical form"
    report = entropy_report(params)
    if abs(report.bits - claims.entropy_bits) > 1e-9:
        return f"MISMATCH: the parameters give {report.bits} bits, not {claims.entropy_bits}"
    met = {preset_id_for(s) for s in claims.standards_met}
    extra = sorted(met - set(standards_met(params)))
    if extra:
        return f"MISMATCH: the parameters do not meet {', '.join(extra)}"
    return f"recomputed from the parameters by this verifier: {report.bits} bits, standards agree"


def _prove_command(claims: CertificateClaims) -> str:
    target = claims.target
    uri = f"{target.system}://{target.path}" if target is not None else ""
    if uri and _SAFE_URI.fullmatch(uri):
        return f"passgeni prove {shlex.quote(uri)}"
    return "passgeni prove STORE_URI"


@dataclass(frozen=True)
class ProvenanceRecord:
    """A judged certificate and how it was judged, ready to render."""

    verdict: Verdict
    #: How the certificate was checked, in words (offline against which keys, or online).
    checked: str
    issuer: str
    generated_at: datetime

    @property
    def claims(self) -> CertificateClaims:
        assert self.verdict.certificate is not None  # provenance_record ensures it
        return self.verdict.certificate.claims

    def context(self) -> dict[str, Any]:
        """What the templates show (public facts only)."""
        cert = self.verdict.certificate
        assert cert is not None
        claims = cert.claims
        rows, params = _parameter_rows(claims.parameters)
        generation = claims.generation.to_dict() if claims.generation else None
        token = cert.token
        return {
            "cert_id": claims.jti,
            "issuer": claims.iss,
            "embedded_note": EMBEDDED_ISSUER_NOTE if claims.embedded_issuer else "",
            "kid": cert.kid,
            "status": self.verdict.status,
            "detail": self.verdict.detail,
            "checked": self.checked,
            "issued_at": _iso(claims.issued_at),
            "expires_at": _iso(claims.expires_at),
            "generated_at": _iso(self.generated_at),
            "version": __version__,
            "compliance_standard": claims.compliance_standard,
            "parameters": rows,
            "entropy_bits": claims.entropy_bits,
            "naive_entropy_bits": claims.naive_entropy_bits,
            "recomputed": _recomputed(claims, params),
            "mapping_version": claims.mapping_version,
            "local_mapping": MAPPING_VERSION,
            "standards": _standard_rows(claims),
            "generation": generation,
            "binding_only": generation is None and claims.credential_commitment is not None,
            "sources": source_statements(claims),
            "provenance": claims.provenance,
            "entropy_source": [(k, _shown(v)) for k, v in sorted(claims.entropy_source.items())],
            "target": claims.target.to_dict() if claims.target else None,
            "label": claims.label,
            "prove": _prove_command(claims),
            "jwks_file": "jwks.json",
            "token_file": f"{claims.jti}.jwt",
            "token_lines": [token[i : i + _TOKEN_LINE] for i in range(0, len(token), _TOKEN_LINE)],
            "title": f"Provenance record of certificate {claims.jti}",
        }

    def render(self, fmt: str = "md") -> bytes:
        """The record as Markdown, HTML or PDF.

        Raises:
            InvalidRequest: an unknown format.
            PassgeniError: the renderer for ``fmt`` is not installed (one line: what to install).
        """
        if fmt not in PROVENANCE_FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(PROVENANCE_FORMATS)}")
        context = self.context()
        env = jinja()
        markdown = re.sub(r"\n{3,}", "\n\n", env.get_template("provenance.md.j2").render(**context))
        if fmt == "md":
            return markdown.encode("utf-8")
        body = markdown_to_html(markdown)
        if fmt == "html":
            page = env.get_template("provenance.html.j2").render(title=context["title"], body=body)
            return str(page).encode("utf-8")
        return html_to_pdf(body, context["title"], what="PDF provenance records")


def provenance_record(
    client: AuthorityClient | None,
    *,
    token: str | None = None,
    cert_id: str | None = None,
    jwks: JWKS | None = None,
    issuer: str | None = None,
    status_list: StatusList | None = None,
    now: datetime | None = None,
) -> ProvenanceRecord:
    """Judge one certificate (offline: ``client=None`` with ``jwks`` and ``issuer``) and
    return its provenance record. A revoked or expired certificate gets a record that
    says so; one that does not verify gets none.

    Raises:
        InvalidToken: the certificate does not verify (its code says why).
        InvalidRequest: neither a token nor an id, or offline without keys and issuer.
        AuthorityError: the authority could not be asked (online).
    """
    at = now or datetime.now(UTC)
    verdict = assess_certificate(
        client,
        token=token,
        cert_id=cert_id,
        jwks=jwks,
        issuer=issuer,
        now=at,
        status_list=status_list,
    )
    if verdict.certificate is None:
        if isinstance(verdict.error, PassgeniError):
            raise verdict.error
        raise InvalidToken(f"no provenance record: {verdict.detail}")
    expected = issuer or (client.issuer if client is not None else verdict.certificate.claims.iss)
    if client is None:
        how = f"offline, against the key set given, for issuer {expected}"
        how += (
            "; revocation against the status list given"
            if status_list
            else ("; revocation not checked (no status list given)")
        )
    else:
        how = f"online, against the authority at {client.base_url} (issuer {expected}), with its record"
    return ProvenanceRecord(verdict=verdict, checked=how, issuer=expected, generated_at=at)
