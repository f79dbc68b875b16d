"""The authority's answers as typed records, parsed and checked from its JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .._errors import (
    AuthorityError,
    InvalidRequest,
)
from ..model import Target

CertificateStatus = Literal["valid", "expired", "revoked"]
_STATUSES = ("valid", "expired", "revoked")


# --- response models ---------------------------------------------------------------


def _bad(what: str) -> AuthorityError:
    return AuthorityError(f"unexpected response from the authority: {what}")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(f"field {key!r} is missing or not a string")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"field {key!r} is not a string")
    return value


def _float(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"field {key!r} is missing or not a number")
    return float(value)


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else _float(data, key)


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"field {key!r} is missing or not an integer")
    return value


def _strs(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"field {key!r} is missing or not a list of strings")
    return tuple(value)


def _obj(data: Mapping[str, Any], key: str, *, optional: bool = False) -> dict[str, Any]:
    value = data.get(key)
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"field {key!r} is missing or not an object")
    return value


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(f"field {key!r} is missing or not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(f"field {key!r} is not an ISO 8601 time") from None
    # The contract says UTC with "Z"; a naive time from a lax server means UTC too.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _time(data: Mapping[str, Any], key: str) -> datetime:
    return _parse_time(data.get(key), key)


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    return None if data.get(key) is None else _time(data, key)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class GenerationSession:
    """The authority's answer to ``POST /api/generate``: a single-use, 60-second session.

    The session id is a bearer capability for one certificate, so ``repr``
    shows only its first characters.
    """

    session_id: str
    expires_in: int
    #: Local clock time after which the server will refuse the session.
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    mapping_version: str | None = None

    def __repr__(self) -> str:
        return (
            f"GenerationSession(session_id='{self.session_id[:8]}...', "
            f"compliance_standard={self.compliance_standard!r}, "
            f"entropy_bits={self.entropy_bits}, expires_at={_iso(self.expires_at)!r})"
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, received_at: datetime) -> GenerationSession:
        """Parse the response body.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        expires_in = _int(data, "expires_in")
        return cls(
            session_id=_str(data, "generation_session_id"),
            expires_in=expires_in,
            expires_at=received_at + timedelta(seconds=expires_in),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            naive_entropy_bits=_opt_float(data, "naive_entropy_bits"),
            parameters=_obj(data, "parameters", optional=True),
            mapping_version=_opt_str(data, "mapping_version"),
        )


@dataclass(frozen=True, kw_only=True)
class IssuedCertificate:
    """The authority's answer to ``POST /api/generate-certificate``."""

    cert_id: str
    cert_url: str
    token: str
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    issued_at: datetime
    expires_at: datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IssuedCertificate:
        """Parse the response body.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        return cls(
            cert_id=_str(data, "cert_id"),
            cert_url=_str(data, "cert_url"),
            token=_str(data, "token"),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            issued_at=_time(data, "issued_at"),
            expires_at=_time(data, "expires_at"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "token": self.token,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True, kw_only=True)
class CertificateRecord:
    """A certificate as the authority stores it, with its current status."""

    cert_id: str
    cert_url: str
    status: CertificateStatus
    issued_at: datetime
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    token: str
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    entropy_source: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    target: Target | None = None
    kid: str | None = None

    @property
    def reason(self) -> str | None:
        """The revocation reason (``None`` unless revoked)."""
        return self.revocation_reason

    @property
    def revoked(self) -> bool:
        return self.status == "revoked"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateRecord:
        """Parse a certificate record.

        Raises:
            AuthorityError: a field is missing or ill-typed, or the status is unknown.
        """
        status = data.get("status")
        if status not in _STATUSES:
            raise _bad(f"certificate status {str(status)[:20]!r} is not valid/expired/revoked")
        target = None
        if data.get("target") is not None:
            try:
                target = Target.from_dict(data["target"])
            except InvalidRequest as exc:
                raise _bad(f"field 'target': {exc.message}") from None
        return cls(
            cert_id=_str(data, "cert_id"),
            cert_url=_str(data, "cert_url"),
            status=status,
            issued_at=_time(data, "issued_at"),
            expires_at=_time(data, "expires_at"),
            compliance_standard=_str(data, "compliance_standard"),
            standards_met=_strs(data, "standards_met"),
            entropy_bits=_float(data, "entropy_bits"),
            token=_str(data, "token"),
            revoked_at=_opt_time(data, "revoked_at"),
            revocation_reason=_opt_str(data, "revocation_reason"),
            parameters=_obj(data, "parameters", optional=True),
            entropy_source=_obj(data, "entropy_source", optional=True),
            label=_opt_str(data, "label"),
            target=target,
            kid=_opt_str(data, "kid"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "status": self.status,
            "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "parameters": self.parameters,
            "entropy_source": self.entropy_source,
            "label": self.label,
            "target": self.target.to_dict() if self.target else None,
            "token": self.token,
            "kid": self.kid,
        }


@dataclass(frozen=True, kw_only=True)
class Anomaly:
    """An anomaly flag from the audit (e.g. more than 50 certificates in 24 h)."""

    user: str
    detected_at: datetime
    count_24h: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "detected_at": _iso(self.detected_at),
            "count_24h": self.count_24h,
        }


@dataclass(frozen=True, kw_only=True)
class AuditPage:
    """One page of ``GET /api/audit``."""

    items: tuple[CertificateRecord, ...]
    page: int
    page_size: int
    total: int
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditPage:
        """Parse an audit page.

        Raises:
            AuthorityError: a field is missing or ill-typed.
        """
        items = data.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise _bad("field 'items' is missing or not a list of objects")
        raw_anomalies = data.get("anomalies") or []
        if not isinstance(raw_anomalies, list) or not all(
            isinstance(a, dict) for a in raw_anomalies
        ):
            raise _bad("field 'anomalies' is not a list of objects")
        return cls(
            items=tuple(CertificateRecord.from_dict(i) for i in items),
            page=_int(data, "page"),
            page_size=_int(data, "page_size"),
            total=_int(data, "total"),
            anomalies=tuple(
                Anomaly(
                    user=_str(a, "user"),
                    detected_at=_time(a, "detected_at"),
                    count_24h=_int(a, "count_24h"),
                )
                for a in raw_anomalies
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [i.to_dict() for i in self.items],
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "anomalies": [a.to_dict() for a in self.anomalies],
        }


@dataclass(frozen=True, kw_only=True)
class CertificateRequest:
    """One item of a batch issuance: a session plus what to bind the certificate to."""

    session_id: str
    credential_commitment: str | None = None
    target: Target | Mapping[str, Any] | None = None
    label: str | None = None

    def __repr__(self) -> str:
        return f"CertificateRequest(session_id='{self.session_id[:8]}...', label={self.label!r})"

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"generation_session_id": self.session_id}
        if self.credential_commitment is not None:
            body["credential_commitment"] = self.credential_commitment
        if self.target is not None:
            target = (
                self.target
                if isinstance(self.target, Target)
                else Target.from_dict(dict(self.target))
            )
            body["target"] = target.to_dict()
        if self.label is not None:
            body["label"] = self.label
        return body
