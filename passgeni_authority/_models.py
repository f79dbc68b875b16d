"""What the authority's operations return that is not a wire body: the caller,
API keys, signing keys, and the full view of a stored certificate. Secrets
(a new API key) stay out of their reprs.

The answers the API sends are the wire contract's Structs
(``passgeni_core.client``: ``GenerationBatchBody``, ``IssuedCertificateBody``,
``AuditPageBody``...), built by the service itself; a :class:`CertificateRecord`
becomes one with :meth:`~CertificateRecord.to_wire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from passgeni_core import MalformedToken
from passgeni_core.client import (
    CertificateRecordBody,
    CertificateStatus,
    LogEntryBody,
    TargetBody,
)
from passgeni_core.model import Provenance, fips_problem

from ._util import instant, iso

__all__ = [
    "KEY_PREFIX",
    "ApiKeyInfo",
    "CertificateRecord",
    "CreatedApiKey",
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
    #: An operator's key: reads every tenant's events (``GET /api/events``).
    operator: bool = False


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
    #: An operator's key (reads every tenant's events).
    operator: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "user": self.user_id,
            "team": self.team_id,
            "rate_limit": self.rate_limit,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "operator": self.operator,
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


@dataclass(frozen=True)
class CertificateRecord:
    """A stored certificate with its current status (public data only): the
    wire record (:meth:`to_wire`) and the claims the certificate page shows
    besides (issuer, subject, mapping version, commitment).

    ``entropy_source`` is what the client **declared**; ``provenance`` (``None``
    for certificates issued before it) what the authority **observed** and the
    FIPS rule; :attr:`fips_problem` is non-empty if the FIPS 140-3 claim goes
    beyond that rule (the page must then say so)."""

    cert_id: str
    cert_url: str
    status: CertificateStatus
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
    provenance: dict[str, Any] | None = None
    #: Its issuance and revocation leaves in the transparency log (None: not in it).
    log_index: int | None = None
    revocation_log_index: int | None = None

    @property
    def fips_problem(self) -> str:
        """Why the FIPS 140-3 claim is more than its stated rule allows ('' if not)."""
        try:
            provenance = None if self.provenance is None else Provenance.from_dict(self.provenance)
        except MalformedToken as exc:
            return exc.message
        return fips_problem(provenance, self.standards_met, self.entropy_source)

    def to_wire(self) -> CertificateRecordBody:
        """The record as ``GET /api/certificates/{id}`` answers it."""
        return CertificateRecordBody(
            cert_id=self.cert_id,
            cert_url=self.cert_url,
            status=self.status,
            revoked_at=instant(self.revoked_at),
            revocation_reason=self.revocation_reason,
            issued_at=instant(self.issued_at),
            expires_at=instant(self.expires_at),
            compliance_standard=self.compliance_standard,
            standards_met=self.standards_met,
            entropy_bits=self.entropy_bits,
            parameters=self.parameters,
            entropy_source=self.entropy_source,
            provenance=self.provenance,
            label=self.label,
            target=None if self.target is None else msgspec.convert(self.target, TargetBody),
            token=self.token,
            kid=self.kid,
            log=None
            if self.log_index is None
            else LogEntryBody(index=self.log_index, revocation_index=self.revocation_log_index),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_wire().to_dict()
