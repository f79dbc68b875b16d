"""A submitted coverage scan (``POST /api/scans``), checked field by field.

``passgeni scan URI... --submit`` sends, per credential, its store reference (the URI),
the judge's status and machine-readable reasons, and the certificate's id, standard and
expiry: references and statuses only, never a value, a seed or a message with tenant text.
Anything else is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

from passgeni_core import InvalidRequest, checked_text
from passgeni_core.client import ScanStatus

__all__ = ["COVERED", "MAX_FINDINGS", "SCAN_STATUSES", "parse_scan"]

_REASON = re.compile(r"[a-z0-9_]{1,40}")

#: The scan statuses that are coverage (a good certificate); the rest are gaps.
COVERED = frozenset({"valid", "expiring"})
MAX_FINDINGS = 10_000
SCAN_STATUSES = frozenset(get_args(ScanStatus))


def _instant_field(data: Mapping[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidRequest(f"{name} must carry a time zone")
    return parsed


_SCAN_FIELDS = frozenset({"scanned_at", "require", "expiring_days", "credentials"})
_FINDING_FIELDS = frozenset({"uri", "status", "reasons", "cert_id", "standard", "expires_at"})


def parse_scan(body: Mapping[str, Any]) -> dict[str, Any]:
    """A submitted scan, checked field by field (references and statuses only)."""
    unknown = sorted(str(k)[:40] for k in body if k not in _SCAN_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    entries = body.get("credentials")
    if not isinstance(entries, list):
        raise InvalidRequest("credentials must be a list")
    if len(entries) > MAX_FINDINGS:
        raise InvalidRequest(f"a scan submits at most {MAX_FINDINGS} credentials")
    days = body.get("expiring_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3650:
        raise InvalidRequest("expiring_days must be a whole number of days (0-3650)")
    require = body.get("require")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"credentials[{i}] must be an object")
        extra = sorted(str(k)[:40] for k in entry if k not in _FINDING_FIELDS)
        if extra:
            raise InvalidRequest(f"credentials[{i}]: unknown field(s): {', '.join(extra)}")
        status = entry.get("status")
        if status not in SCAN_STATUSES:
            raise InvalidRequest(f"credentials[{i}].status is not a scan status")
        reasons = entry.get("reasons", [])
        if (
            not isinstance(reasons, list)
            or len(reasons) > 20
            or not all(isinstance(x, str) and _REASON.fullmatch(x) for x in reasons)
        ):
            raise InvalidRequest(f"credentials[{i}].reasons must be a list of reason codes")
        out.append(
            {
                "uri": checked_text(
                    entry.get("uri"), name=f"credentials[{i}].uri", max_length=1024
                ),
                "status": status,
                "reasons": " ".join(reasons)[:512],
                "cert_id": _optional_text(entry, "cert_id", i, 40),
                "standard": _optional_text(entry, "standard", i, 64),
                "expires_at": _instant_field(entry, "expires_at"),
            }
        )
    return {
        "scanned_at": _instant_field(body, "scanned_at"),
        "require": None
        if require is None
        else checked_text(require, name="require", max_length=64),
        "expiring_days": days,
        "credentials": out,
    }


def _optional_text(entry: Mapping[str, Any], name: str, i: int, limit: int) -> str | None:
    value = entry.get(name)
    return (
        None
        if value is None
        else checked_text(value, name=f"credentials[{i}].{name}", max_length=limit)
    )
