"""How the dashboard shows what :mod:`._dashboard_data` and :mod:`._coverage` count: the
charts as inline SVG drawn here (no script, no library, nothing loaded), the status
labels, and the CSV exports (every cell neutralised: never a formula, never a new row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from passgeni_core import csv_cell

from ._coverage import Finding
from ._dashboard_data import BUCKETS, CertRow

__all__ = [
    "BUCKET_LABELS",
    "CSV_FIELDS",
    "Bar",
    "bars_svg",
    "certificates_csv",
    "coverage_csv",
    "stacked_svg",
]

BUCKET_LABELS: Mapping[str, str] = {
    "valid": "valid",
    "expiring_90": "expiring within 90 days",
    "expiring_60": "expiring within 60 days",
    "expiring_30": "expiring within 30 days",
    "expired": "expired",
    "revoked": "revoked",
}
#: Fill colours of the buckets: distinguishable and dark enough on white (plus a legend).
_COLOURS: Mapping[str, str] = {
    "valid": "#1a7f37",
    "expiring_90": "#0969da",
    "expiring_60": "#8250df",
    "expiring_30": "#bc4c00",
    "expired": "#57606a",
    "revoked": "#a40e26",
}


@dataclass(frozen=True)
class Bar:
    label: str
    parts: Mapping[str, int]


def stacked_svg(title: str, bars: Sequence[Bar], *, width: int = 640) -> str:
    """Horizontal stacked bars (one per label, segments per bucket) with a legend."""
    row_h, label_w, pad = 26, 150, 6
    chart_w = width - label_w - 60
    total_max = max((sum(b.parts.values()) for b in bars), default=0) or 1
    height = pad * 2 + row_h * max(len(bars), 1) + 52
    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = pad + i * row_h
        out.append(
            f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end" font-size="13" fill="#1b1f24">'
            f"{escape(bar.label[:22])}</text>"
        )
        x = float(label_w)
        for bucket in BUCKETS:
            n = bar.parts.get(bucket, 0)
            if not n:
                continue
            w = chart_w * n / total_max
            out.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
                f'fill="{_COLOURS[bucket]}"><title>{escape(bar.label)}: {n} {BUCKET_LABELS[bucket]}</title></rect>'
            )
            x += w
        out.append(
            f'<text x="{x + 4:.1f}" y="{y + 17}" font-size="13" fill="#1b1f24">{sum(bar.parts.values())}</text>'
        )
    legend_y = pad + row_h * max(len(bars), 1) + 10
    for i, bucket in enumerate(BUCKETS):
        x, y = (i % 3) * (width // 3), legend_y + (i // 3) * 20
        out.append(
            f'<rect x="{x}" y="{y}" width="10" height="10" fill="{_COLOURS[bucket]}"/>'
            f'<text x="{x + 14}" y="{y + 10}" font-size="12" fill="#1b1f24">'
            f"{escape(BUCKET_LABELS[bucket])}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def bars_svg(title: str, points: Sequence[tuple[str, int]], *, width: int = 640) -> str:
    """Vertical bars (issuance over time), every fifth label shown."""
    height, base, top = 200, 170, 12
    n = max(len(points), 1)
    step = (width - 70) / n
    peak = max((v for _, v in points), default=0) or 1
    out = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="30" y1="{base}" x2="{width}" y2="{base}" stroke="#57606a"/>',
        f'<text x="26" y="{top + 10}" text-anchor="end" font-size="11" fill="#1b1f24">{peak}</text>',
    ]
    for i, (label, value) in enumerate(points):
        h = (base - top) * value / peak
        x = 34 + i * step
        out.append(
            f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{max(step - 3, 1):.1f}" height="{h:.1f}" '
            f'fill="#0a4fa6"><title>{escape(label)}: {value}</title></rect>'
        )
        if i % 5 == 0 or i == len(points) - 1:
            out.append(
                f'<text x="{x:.1f}" y="{base + 16}" font-size="10" fill="#1b1f24">{escape(label[5:])}</text>'
            )
    out.append("</svg>")
    return "".join(out)


CSV_FIELDS = (
    "cert_id",
    "cert_url",
    "status",
    "standard",
    "standards_met",
    "issued_at",
    "expires_at",
    "system",
    "path",
    "label",
    "owner",
    "team",
)


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def certificates_csv(rows: Iterable[CertRow], cert_url: str) -> str:
    """The rows as CSV (every cell neutralised: never a formula, never a new row)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    r.cert_id,
                    f"{cert_url}/{r.cert_id}",
                    BUCKET_LABELS[r.bucket],
                    r.standard,
                    " ".join(r.standards_met),
                    _iso(r.issued_at),
                    _iso(r.expires_at),
                    r.system,
                    r.path,
                    r.label,
                    r.owner,
                    r.team or "",
                )
            ]
        )
    return buf.getvalue()


def coverage_csv(findings: Iterable[Finding], cert_url: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(
        (
            "uri",
            "status",
            "covered",
            "reasons",
            "cert_id",
            "cert_url",
            "standard",
            "expires_at",
            "scanned_at",
        )
    )
    for f in findings:
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    f.uri,
                    f.status,
                    "yes" if f.covered else "no",
                    f.reasons,
                    f.cert_id or "",
                    f"{cert_url}/{f.cert_id}" if f.cert_id else "",
                    f.standard or "",
                    _iso(f.expires_at),
                    _iso(f.scanned_at),
                )
            ]
        )
    return buf.getvalue()


# -- OSCAL (the same assessment results as `passgeni scan/registry --format oscal`) -------

_IN_USE = ("valid", "expiring_90", "expiring_60", "expiring_30")


def certificates_oscal(rows: Iterable[CertRow], cert_url: str, at: datetime) -> bytes:
    """The certificates view as OSCAL assessment results: a certificate in use is covered;
    a revoked or expired one is history (an observation, in no control's scope)."""
    from passgeni_core.audit import AssessedCredential, oscal_assessment

    subjects = [
        AssessedCredential(
            name=f"{r.system}:{r.path}" if r.system != "-" else r.cert_id,
            covered=r.bucket in _IN_USE,
            status=BUCKET_LABELS[r.bucket],
            detail="",
            cert_id=r.cert_id,
            cert_url=f"{cert_url}/{r.cert_id}",
            standard=r.standard,
            standards_met=r.standards_met,
            expires_at=r.expires_at,
            in_use=r.bucket in _IN_USE,
        )
        for r in rows
    ]
    return oscal_assessment(
        subjects,
        title="PassGeni certificates (dashboard): assessment results",
        what="The authority's certificates as its dashboard lists them",
        at=at,
    )


def coverage_oscal(findings: Iterable[Finding], cert_url: str, at: datetime) -> bytes:
    """The coverage view (each credential's latest submitted scan) as OSCAL."""
    from passgeni_core.audit import AssessedCredential, oscal_assessment

    subjects = [
        AssessedCredential(
            name=f.uri,
            covered=f.covered and f.cert_id is not None,
            status=f.status,
            detail=f.reasons,
            cert_id=f.cert_id,
            cert_url=f"{cert_url}/{f.cert_id}" if f.cert_id else None,
            standard=f.standard,
            # A submitted scan names the certificate's standard, not its whole list.
            standards_met=(f.standard,) if f.standard else (),
            expires_at=f.expires_at,
        )
        for f in findings
    ]
    return oscal_assessment(
        subjects,
        title="PassGeni credential coverage (dashboard): assessment results",
        what="The credentials found by the scans submitted to the authority",
        at=at,
    )
