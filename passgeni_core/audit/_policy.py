"""The written password policy: one document per organisation and set of standards.

``render_policy(["soc2", "hipaa"], org="Example Corp", fmt="md"|"html"|"pdf")``
returns the document as bytes. The content lives in one Jinja2 template
(``templates/policy.md.j2``) fed from the same preset table the generator
and the authority use (requirements, citations, honesty notes) plus the
rotation table below. HTML is the Markdown rendered by markdown-it-py (raw
HTML disabled, so nothing in an organisation name becomes markup) inside
``templates/policy.html.j2``; PDF is that HTML laid out by fpdf2.

Pure: no files written, no environment read. Jinja2, markdown-it-py and fpdf2
are imported only when a document is rendered (``pip install 'passgeni[auditor]'``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from .._errors import InvalidRequest
from ..model import (
    CERT_LIFETIME,
    CLASS_NAMES,
    FIPS_RULES,
    LENIENT_RULE,
    MAPPING_VERSION,
    STRICT_RULE,
    GenerationParameters,
    Preset,
    entropy_report,
    get_preset,
    list_presets,
    standards_met,
)
from ._render import html_to_pdf, jinja, markdown_to_html

__all__ = ["POLICY_FORMATS", "ROTATION", "Rotation", "parse_standards", "render_policy"]

PolicyFormat = Literal["md", "html", "pdf"]
POLICY_FORMATS: tuple[str, ...] = ("md", "html", "pdf")
_MAX_ORG = 200


@dataclass(frozen=True, kw_only=True)
class Rotation:
    """How often a standard (or PassGeni's recommendation for it) rotates credentials.

    ``*_days`` is ``None`` where nothing periodic is asked (rotation on events only).
    """

    privileged_days: int | None
    service_days: int | None
    events: tuple[str, ...]
    basis: str


#: Rotation per preset. Where a standard sets no period, the row says so and
#: gives PassGeni's recommendation; the ``basis`` is printed in the policy.
ROTATION: dict[str, Rotation] = {
    "nist-800-63b": Rotation(
        privileged_days=None,
        service_days=None,
        events=("evidence of compromise",),
        basis=(
            "SP 800-63B 5.1.1.2: verifiers SHOULD NOT require periodic changes; change on "
            "evidence of compromise."
        ),
    ),
    "nist-800-63b-4-single-factor": Rotation(
        privileged_days=None,
        service_days=None,
        events=("evidence of compromise",),
        basis="SP 800-63B-4: no periodic change; change on evidence of compromise.",
    ),
    "hipaa": Rotation(
        privileged_days=365,
        service_days=365,
        events=("workforce termination", "suspected compromise"),
        basis=(
            "HIPAA sets no period; §164.308(a)(3)(ii)(C) asks termination procedures. "
            "Yearly is PassGeni's recommendation."
        ),
    ),
    "pci-dss": Rotation(
        privileged_days=90,
        service_days=365,
        events=("suspected compromise", "offboarding"),
        basis=(
            "PCI DSS v4.0 8.3.9: single-factor passwords change at least every 90 days; "
            "8.6.3: system and application accounts per targeted risk analysis "
            "(yearly recommended)."
        ),
    ),
    "soc2": Rotation(
        privileged_days=365,
        service_days=365,
        events=("offboarding", "suspected compromise"),
        basis=(
            "SOC 2 names no period; auditors test the entity's policy. Yearly or on "
            "offboarding is PassGeni's recommendation."
        ),
    ),
    "iso-27001": Rotation(
        privileged_days=365,
        service_days=365,
        events=("offboarding", "suspected compromise"),
        basis=(
            "ISO/IEC 27001 A.5.17 names no period. Yearly or on offboarding is PassGeni's "
            "recommendation."
        ),
    ),
    "fips-140-3": Rotation(
        privileged_days=90,
        service_days=180,
        events=("suspected compromise", "offboarding", "FIPS-mode change of the host"),
        basis=(
            "FIPS 140-3 sets no period; NIST SP 800-53 IA-5 leaves it organisation-defined. "
            "90 days for privileged accounts is PassGeni's recommendation for FedRAMP/DoD "
            "environments."
        ),
    ),
}


def _period(days: int | None) -> str:
    if days is None:
        return "no fixed period"
    if days % 365 == 0:
        years = days // 365
        return "year" if years == 1 else f"{years} years"
    return f"{days} days"


def parse_standards(value: str | Sequence[str]) -> list[Preset]:
    """``"soc2,hipaa"`` (or a list) -> presets, in the table's order, without duplicates.

    Raises:
        InvalidRequest: no standard given.
        UnknownPreset: an unknown id (the message lists the valid ones).
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    ids = {get_preset(item.strip()).id for item in items if item.strip()}
    if not ids:
        raise InvalidRequest("give at least one standard, e.g. --standards soc2,hipaa")
    return [p for p in list_presets() if p.id in ids]


def _context(presets: list[Preset], org: str, owner: str, effective: date) -> dict[str, Any]:
    required = [c for c in CLASS_NAMES if any(c in p.required_classes for p in presets)]
    # The preset whose default parameters meet every selected standard: try the
    # strictest first, and confirm with the same check the authority runs.
    ids = {p.id for p in presets}
    recommended = None
    met: list[str] = []
    for candidate in sorted(list_presets(), key=lambda p: (-p.min_length, p.id)):
        params = GenerationParameters.for_preset(candidate)
        met = standards_met(params)
        if ids <= set(met) and (candidate.id in ids or recommended is None):
            recommended = candidate
            if candidate.id in ids:
                break
    if recommended is None:  # pragma: no cover - the strictest preset meets them all today
        recommended = max(presets, key=lambda p: p.min_length)
    params = GenerationParameters.for_preset(recommended)
    met = standards_met(params)
    rows = []
    for p in presets:
        rot = ROTATION.get(p.id)
        if rot is None:
            continue
        rows.append(
            {
                "standard": p.standard,
                "privileged": _period(rot.privileged_days),
                "service": _period(rot.service_days),
                "events": ", ".join(rot.events),
                "basis": rot.basis,
            }
        )
    rots = [ROTATION[p.id] for p in presets if p.id in ROTATION]

    def shortest(values: list[int | None]) -> str:
        known = [v for v in values if v is not None]
        return _period(min(known)) if known else "year (PassGeni recommendation)"

    events: list[str] = []
    for rot in rots:
        events += [e for e in rot.events if e not in events]
    return {
        "org": org,
        "owner": owner,
        "presets": presets,
        "date": effective.isoformat(),
        "next_review": (effective + timedelta(days=365)).isoformat(),
        "mapping_version": MAPPING_VERSION,
        "combined": {
            "min_length": max(p.min_length for p in presets),
            "required_classes": required,
            "breach_check": any(p.breach_check for p in presets),
            "fips": any(p.requires_fips_entropy for p in presets),
        },
        "recommended": recommended,
        "recommended_met": met,
        "recommended_entropy": entropy_report(params).bits,
        "rotations": rows,
        "adopted": {
            "privileged": shortest([r.privileged_days for r in rots]),
            "service": shortest([r.service_days for r in rots]),
            "events": ", ".join(events) or "suspected compromise",
        },
        "fips": {
            "strict": STRICT_RULE,
            "strict_text": FIPS_RULES[STRICT_RULE],
            "lenient": LENIENT_RULE,
        },
        "cert_lifetime_days": CERT_LIFETIME.days,
        "status_list_hours": 24,
        "title": f"{' '.join(org.split())}: Password and Service Credential Policy",
    }


def render_policy(
    standards: str | Sequence[str],
    org: str,
    *,
    fmt: PolicyFormat | str = "md",
    owner: str | None = None,
    effective: date | datetime | None = None,
) -> bytes:
    """Render the written policy for ``standards`` (ids or ``"soc2,hipaa"``).

    Raises:
        InvalidRequest: an unknown format, no standard, or an empty/oversized org name.
        UnknownPreset: an unknown standard id.
        PassgeniError: the renderer for ``fmt`` is not installed.
    """
    if fmt not in POLICY_FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(POLICY_FORMATS)}")
    if not isinstance(org, str) or not org.strip() or len(org) > _MAX_ORG:
        raise InvalidRequest(f"the organisation name must be 1-{_MAX_ORG} characters")
    if any(not ch.isprintable() for ch in org):
        raise InvalidRequest("the organisation name must be printable text")
    presets = parse_standards(standards)
    when = effective or datetime.now(UTC)
    day = when.date() if isinstance(when, datetime) else when
    context = _context(presets, org.strip(), owner or "Head of Information Security", day)
    env = jinja()
    markdown = env.get_template("policy.md.j2").render(**context)
    # Collapse the blank-line runs that template loops leave behind.
    markdown = re.sub(r"\n{3,}", "\n\n", markdown)
    if fmt == "md":
        return markdown.encode("utf-8")
    if fmt == "html":
        body = markdown_to_html(markdown)
        html = env.get_template("policy.html.j2").render(title=context["title"], body=body)
        return str(html).encode("utf-8")
    # In the PDF the closing line ("Generated by PassGeni on ...") is the footer of every page.
    text, rule, colophon = markdown.rstrip().rpartition("\n---\n")
    if not rule or "\n" in colophon.strip():
        text, colophon = markdown, context["title"]
    return html_to_pdf(
        markdown_to_html(text), context["title"], what="PDF policies", footer=colophon.strip()
    )
