"""What the authority's operations return: plain frozen dataclasses, each with
the ``to_dict`` the API answers with. Secrets (a new API key, session ids)
stay out of their reprs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._util import iso

__all__ = [
    "KEY_PREFIX",
    "ApiKeyInfo",
    "AuditPage",
    "CertificateRecord",
    "CreatedApiKey",
    "GenerationBatch",
    "GenerationTicket",
    "IssuedCertificate",
    "Principal",
    "SigningKeyInfo",
]

#: The first part of every API key (``pgk_<prefix>_<secret>``).
KEY_PREFIX = "pgk"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: str
    #: Set for team keys: the caller acts for the whole team.
    team_id: str | None
    key_prefix: str
    #: Requests per minute of an automation key (``None``: the defaults apply).
    rate_limit: int | None = None


@dataclass(frozen=True, repr=False)
class CreatedApiKey:
    """A new API key. ``key`` is shown once and never stored; ``repr`` hides it."""

    key: str
    prefix: str
    user_id: str
    team_id: str | None
    rate_limit: int | None
    created_at: datetime

    def __repr__(self) -> str:
        return (
            f"CreatedApiKey(key='{KEY_PREFIX}_{self.prefix}_***', prefix={self.prefix!r}, "
            f"user_id={self.user_id!r}, team_id={self.team_id!r}, rate_limit={self.rate_limit!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_key": self.key,
            "prefix": self.prefix,
            "user": self.user_id,
            "team": self.team_id,
            "rate_limit": self.rate_limit,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed (never the key itself)."""

    prefix: str
    user_id: str
    team_id: str | None
    rate_limit: int | None
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "user": self.user_id,
            "team": self.team_id,
            "rate_limit": self.rate_limit,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
        }


@dataclass(frozen=True)
class SigningKeyInfo:
    kid: str
    created_at: datetime
    retired_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "created_at": iso(self.created_at),
            "retired_at": iso(self.retired_at),
            "active": self.retired_at is None,
        }


@dataclass(frozen=True, repr=False)
class GenerationTicket:
    """The answer to ``POST /api/generate``."""

    generation_session_id: str
    expires_in: int
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float
    parameters: dict[str, Any]
    mapping_version: str

    def __repr__(self) -> str:
        return (
            f"GenerationTicket(compliance_standard={self.compliance_standard!r}, "
            f"entropy_bits={self.entropy_bits!r}, expires_in={self.expires_in!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation_session_id": self.generation_session_id,
            "expires_in": self.expires_in,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "naive_entropy_bits": self.naive_entropy_bits,
            "parameters": self.parameters,
            "mapping_version": self.mapping_version,
        }


@dataclass(frozen=True, repr=False)
class GenerationBatch:
    """The answer to ``POST /api/generate-batch``: many sessions, same parameters."""

    generation_session_ids: list[str]
    expires_in: int
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float
    parameters: dict[str, Any]
    mapping_version: str

    def __repr__(self) -> str:
        return (
            f"GenerationBatch(count={len(self.generation_session_ids)}, "
            f"compliance_standard={self.compliance_standard!r})"
        )

    def tickets(self) -> list[GenerationTicket]:
        return [
            GenerationTicket(
                generation_session_id=sid,
                expires_in=self.expires_in,
                compliance_standard=self.compliance_standard,
                standards_met=self.standards_met,
                entropy_bits=self.entropy_bits,
                naive_entropy_bits=self.naive_entropy_bits,
                parameters=self.parameters,
                mapping_version=self.mapping_version,
            )
            for sid in self.generation_session_ids
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation_session_ids": list(self.generation_session_ids),
            "expires_in": self.expires_in,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "naive_entropy_bits": self.naive_entropy_bits,
            "parameters": self.parameters,
            "mapping_version": self.mapping_version,
        }


@dataclass(frozen=True)
class IssuedCertificate:
    """The answer to ``POST /api/generate-certificate``."""

    cert_id: str
    cert_url: str
    token: str
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    issued_at: datetime
    expires_at: datetime
    kid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "token": self.token,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "issued_at": iso(self.issued_at),
            "expires_at": iso(self.expires_at),
        }


@dataclass(frozen=True)
class CertificateRecord:
    """A stored certificate with its current status (public data only)."""

    cert_id: str
    cert_url: str
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    issued_at: datetime
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None
    parameters: dict[str, Any]
    entropy_source: dict[str, Any]
    label: str | None
    target: dict[str, Any] | None
    token: str
    kid: str
    issuer: str
    subject: str
    mapping_version: str
    credential_commitment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "status": self.status,
            "revoked_at": iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
            "issued_at": iso(self.issued_at),
            "expires_at": iso(self.expires_at),
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "parameters": self.parameters,
            "entropy_source": self.entropy_source,
            "label": self.label,
            "target": self.target,
            "token": self.token,
            "kid": self.kid,
        }


@dataclass(frozen=True)
class AuditPage:
    items: list[CertificateRecord]
    page: int
    page_size: int
    total: int
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "anomalies": self.anomalies,
        }
