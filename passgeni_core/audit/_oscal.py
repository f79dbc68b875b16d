"""OSCAL Assessment Results of a coverage scan or a certificate registry.

``passgeni scan ... --format oscal`` and ``passgeni registry --format oscal`` write one
OSCAL 1.2 ``assessment-results`` document (built with the ``compliance-trestle``
models, ``pip install 'passgeni[auditor]'``, imported only here and only when a
document is made):

* one **inventory item** and one **observation** per credential (or per certificate
  the registry holds without a located credential): what was examined, its status
  and why, the certificate as relevant evidence;
* one **finding** per control, a control being the clause of a standard
  (:data:`CONTROLS`, e.g. ``pci-dss-v4.0-8.3.6`` for PCI DSS v4.0 requirement
  8.3.6): ``satisfied`` only when every credential in its scope is covered by a good
  certificate that lists that standard among those met, else ``not-satisfied``
  naming each credential that falls short and the reason; a control with no
  credential in scope is ``not-satisfied`` (nothing was shown), never satisfied.

A credential is in a control's scope when the scan required that standard
(``--require``), else when its certificate was certified for it; a credential with
no usable certificate is in the scope of every control assessed. Identifiers are
UUIDv5 of stable inputs, so the same scan gives the same document. Pure: the CLI
does the I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._errors import PassgeniError
from ..model import get_preset, list_presets, same_standard
from ._registry import Registry
from ._scan import CoverageReport

__all__ = [
    "CONTROLS",
    "OSCAL_NS",
    "AssessedCredential",
    "oscal_assessment",
    "oscal_from_registry",
    "oscal_from_scan",
]

#: Namespace of PassGeni's own OSCAL properties.
OSCAL_NS = "https://passgeni.ai/ns/oscal"
_UUIDS = uuid.uuid5(uuid.NAMESPACE_URL, OSCAL_NS)

#: Preset id -> (control id, the clause), the control a certificate for it answers.
CONTROLS: dict[str, tuple[str, str]] = {
    "nist-800-63b": ("nist-sp-800-63b-5.1.1.2", "NIST SP 800-63B section 5.1.1.2"),
    "nist-800-63b-4-single-factor": (
        "nist-sp-800-63b-4-3.1.1.2",
        "NIST SP 800-63B-4 section 3.1.1.2",
    ),
    "hipaa": ("hipaa-164.308-a-5-ii-d", "45 CFR 164.308(a)(5)(ii)(D)"),
    "pci-dss": ("pci-dss-v4.0-8.3.6", "PCI DSS v4.0 requirement 8.3.6"),
    "soc2": ("soc2-tsc-cc6.1", "AICPA Trust Services Criteria CC6.1"),
    "iso-27001": ("iso-iec-27001-2022-a.5.17", "ISO/IEC 27001:2022 Annex A.5.17"),
    "fips-140-3": ("fips-140-3-passgeni-profile", "FIPS 140-3 / SP 800-90B (PassGeni profile)"),
}


@dataclass(frozen=True)
class AssessedCredential:
    """One examined credential (or certificate), public facts only."""

    name: str
    covered: bool
    status: str
    detail: str
    cert_id: str | None
    cert_url: str | None
    standard: str | None
    standards_met: tuple[str, ...]
    expires_at: datetime | None
    #: False for a registry's revoked or expired certificate whose credential no scan
    #: located: history, recorded as an observation but in no control's scope.
    in_use: bool = True


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(_UUIDS, "\x1f".join(str(p) for p in parts)))


def _models() -> Any:
    try:
        from trestle.oscal import OSCAL_VERSION, assessment_results, common
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise PassgeniError(
            "OSCAL output needs compliance-trestle: pip install 'passgeni[auditor]'"
        ) from None
    return OSCAL_VERSION, assessment_results, common


def _meets(subject: AssessedCredential, preset_id: str) -> bool:
    return any(same_standard(met, preset_id) for met in subject.standards_met)


def _in_scope(subject: AssessedCredential, preset_id: str, required: str | None) -> bool:
    if not subject.in_use:
        return False
    if required is not None or not subject.covered or subject.standard is None:
        return True
    return same_standard(subject.standard, preset_id)


def _why_not(subject: AssessedCredential, preset_id: str) -> str | None:
    """Why ``subject`` does not satisfy ``preset_id``'s control (``None``: it does)."""
    if not subject.covered:
        return f"{subject.status}: {subject.detail}" if subject.detail else subject.status
    if not _meets(subject, preset_id):
        return f"its certificate does not list {get_preset(preset_id).claim_id} as met"
    return None


def _controls(subjects: Sequence[AssessedCredential], required: str | None) -> list[str]:
    """The preset ids assessed: the required one, else those certified for, else all."""
    if required is not None:
        return [get_preset(required).id]
    wanted = {
        p.id
        for p in list_presets()
        for s in subjects
        if s.standard is not None and same_standard(s.standard, p.id)
    }
    # Nothing certified for any standard (only uncertified credentials, or none): every
    # control is assessed, and none is met.
    return [p.id for p in list_presets() if (p.id in wanted or not wanted) and p.id in CONTROLS]


def _document(
    subjects: Sequence[AssessedCredential],
    *,
    title: str,
    what: str,
    at: datetime,
    required: str | None,
    scopes: Iterable[str],
) -> bytes:
    oscal_version, ar, c = _models()
    ns = OSCAL_NS
    scope_text = ", ".join(scopes) or "the authority's audit"
    presets = _controls(subjects, required)
    stamp = _iso(at)
    resource = _uid("plan", stamp, scope_text)

    def prop(name: str, value: str) -> Any:
        return c.Property(name=name, value=value, ns=ns)

    items, observations = [], []
    observed: dict[str, str] = {}
    for index, s in enumerate(subjects):
        item_id, obs_id = _uid("item", stamp, index, s.name), _uid("obs", stamp, index, s.name)
        observed[s.name + f"\x1f{index}"] = obs_id
        props = [prop("status", s.status)]
        if s.cert_id:
            props.append(prop("certificate-id", s.cert_id))
        if s.standard:
            props.append(prop("certified-standard", s.standard))
        if s.expires_at is not None:
            props.append(prop("certificate-expires", _iso(s.expires_at)))
        items.append(c.InventoryItem(uuid=item_id, description=f"Credential {s.name}", props=props))
        verdict = "covered by a good certificate" if s.covered else "not covered"
        if not s.in_use:
            verdict = (
                "a past certificate (no scan located its credential: assessed against no control)"
            )
        evidence = None
        if s.cert_url:
            evidence = [
                c.RelevantEvidence(
                    href=s.cert_url,
                    description=f"The signed certificate {s.cert_id} (verify offline with the JWKS)",
                )
            ]
        observations.append(
            c.Observation(
                uuid=obs_id,
                title=f"{s.name}: {s.status}",
                description=(
                    f"{s.name} is {verdict}: {s.status}"
                    + (f" ({s.detail})" if s.detail else "")
                    + (f"; standards met: {', '.join(s.standards_met)}" if s.standards_met else "")
                    + "."
                ),
                methods=["TEST"],
                subjects=[
                    c.SubjectReference(subject_uuid=item_id, type="inventory-item", title=s.name)
                ],
                relevant_evidence=evidence,
                props=props,
                collected=at,
            )
        )

    findings = []
    for preset_id in presets:
        control_id, clause = CONTROLS[preset_id]
        preset = get_preset(preset_id)
        scoped = [
            (s, observed[s.name + f"\x1f{i}"])
            for i, s in enumerate(subjects)
            if _in_scope(s, preset_id, required)
        ]
        short = [(s, why) for s, _ in scoped if (why := _why_not(s, preset_id)) is not None]
        if not scoped:
            state, reason = "not-satisfied", "other"
            remarks = f"No credential in scope was examined: nothing shows {clause} is met."
        elif short:
            state, reason = "not-satisfied", "fail"
            remarks = f"{len(short)} of {len(scoped)} credential(s) fall short: " + "; ".join(
                f"{s.name} ({why})" for s, why in short
            )
        else:
            state, reason = "satisfied", "pass"
            remarks = (
                f"All {len(scoped)} credential(s) in scope are covered by valid certificates "
                f"listing {preset.claim_id} as met."
            )
        findings.append(
            c.Finding(
                uuid=_uid("finding", stamp, control_id),
                title=f"{clause}: {state}",
                description=f"{preset.citation} Assessed: {what}.",
                target=c.FindingTarget(
                    type="objective-id",
                    target_id=f"{control_id}_obj",
                    title=clause,
                    status=c.ObjectiveStatus(state=state, reason=reason, remarks=remarks),
                ),
                related_observations=[
                    ar.RelatedObservation(observation_uuid=obs) for _, obs in scoped
                ]
                or None,
                props=[prop("control-id", control_id), prop("standard", preset.claim_id)],
            )
        )

    selections = [
        c.ControlSelections(
            description="Each standard's password clause, as PassGeni's published mapping cites it",
            include_controls=[c.SelectControlById(control_id=CONTROLS[p][0]) for p in presets],
        )
    ]
    result = ar.Result(
        uuid=_uid("result", stamp, scope_text),
        title=title,
        description=(
            f"{what} of {scope_text}, each credential judged by PassGeni's one judge "
            "(certificate signature against the authority's JWKS, record, revocation, expiry, "
            "drift of the stored value)."
        ),
        start=at,
        end=at,
        local_definitions=ar.LocalDefinitions1(inventory_items=items) if items else None,
        reviewed_controls=c.ReviewedControls(control_selections=selections),
        observations=observations or None,
        findings=findings or None,
    )
    document = ar.AssessmentResults(
        uuid=_uid("document", stamp, scope_text, len(subjects)),
        metadata=c.Metadata(
            title=title,
            last_modified=at,
            version=stamp,
            oscal_version=oscal_version,
            props=[prop("generator", "passgeni")],
        ),
        import_ap=ar.ImportAp(
            href=f"#{resource}",
            remarks="No separate assessment plan: the method and scope are this document's.",
        ),
        results=[result],
        back_matter=c.BackMatter(
            resources=[
                c.Resource(
                    uuid=resource,
                    title="PassGeni coverage assessment (plan)",
                    description=(
                        f"Automated test of {scope_text}: every stored credential's certificate "
                        "is verified and compared with the stored value."
                    ),
                )
            ]
        ),
    )
    text: str = document.oscal_serialize_json(pretty=True, wrapped=True)
    return (text + "\n").encode("utf-8")


def oscal_from_scan(report: CoverageReport, *, scopes: Iterable[str] = ()) -> bytes:
    """The assessment results of a coverage scan (see the module docstring).

    Raises:
        PassgeniError: compliance-trestle is not installed.
    """
    subjects = [
        AssessedCredential(
            name=e.uri,
            covered=e.ok and e.certificate is not None,
            status=e.status,
            detail=e.detail,
            cert_id=e.cert_id,
            cert_url=e.cert_url,
            standard=e.standard,
            standards_met=e.standards_met,
            expires_at=e.expires_at,
        )
        for e in report.entries
    ]
    return _document(
        subjects,
        title="PassGeni credential coverage: assessment results",
        what="A coverage scan",
        at=report.scanned_at,
        required=report.require,
        scopes=scopes,
    )


def oscal_from_registry(registry: Registry) -> bytes:
    """The assessment results of a certificate registry: each certificate (and each
    scanned credential) as an observation. Only a ``valid`` certificate whose
    credential, where scanned, is covered counts as covered; a revoked or expired
    certificate whose credential no scan located is history, in no control's scope.

    Raises:
        PassgeniError: compliance-trestle is not installed.
    """
    subjects = []
    for e in registry.entries:
        coverage_ok = e.coverage in ("", "valid", "expiring")
        detail = e.detail or (f"scan: {e.coverage}" if e.coverage else "")
        if e.status == "revoked" and e.revocation_reason:
            detail = f"revoked: {e.revocation_reason}"
        historical = e.status in ("revoked", "expired") and not e.coverage
        subjects.append(
            AssessedCredential(
                in_use=not historical,
                name=e.credential or e.cert_id or "unknown credential",
                covered=e.status == "valid" and coverage_ok and e.cert_id is not None,
                status=e.status if coverage_ok or not e.coverage else f"{e.status}/{e.coverage}",
                detail=detail,
                cert_id=e.cert_id,
                cert_url=e.cert_url,
                standard=e.standard,
                standards_met=e.standards_met,
                expires_at=e.expires_at,
            )
        )
    return _document(
        subjects,
        title="PassGeni certificate registry: assessment results",
        what="The certificate registry",
        at=registry.generated_at,
        required=None,
        scopes=registry.scopes,
    )


def oscal_assessment(
    subjects: Iterable[AssessedCredential],
    *,
    title: str,
    what: str,
    at: datetime,
    required: str | None = None,
    scopes: Iterable[str] = (),
) -> bytes:
    """The assessment results of credentials examined elsewhere (the authority's
    dashboard: its certificates, or the credentials scans submitted), by the same
    rules as :func:`oscal_from_scan`.

    Raises:
        PassgeniError: compliance-trestle is not installed.
    """
    return _document(
        list(subjects), title=title, what=what, at=at, required=required, scopes=scopes
    )
