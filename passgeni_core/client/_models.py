"""The authority's answers as typed records, decoded from its JSON with the
wire contract's Structs (:mod:`._wire`): the checks are the contract's."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args

import msgspec
from msgspec import UNSET, UnsetType

from .._errors import (
    AuthorityError,
    InvalidRequest,
)
from ..model import Target
from ._wire import (
    AnomalyBody,
    AuditPageBody,
    CertificateRecordBody,
    CertificateStatus,
    GenerationBatchBody,
    GenerationSessionBody,
    IssueBody,
    IssuedCertificateBody,
    LogEntryBody,
    TargetBody,
)

_STATUSES: tuple[str, ...] = get_args(CertificateStatus)


# --- decoding -----------------------------------------------------------------------

_B = TypeVar("_B", bound=msgspec.Struct)


def _bad(what: str) -> AuthorityError:
    return AuthorityError(f"unexpected response from the authority: {what}")


def decode(data: object, body: type[_B]) -> _B:
    """``data`` (parsed JSON) as the wire ``body``.

    Raises:
        AuthorityError: a field is missing or ill-typed (msgspec's message
            names it, e.g. ``Object missing required field `cert_url```).
    """
    try:
        return msgspec.convert(data, body)
    except msgspec.ValidationError as exc:
        raise _bad(str(exc)) from None


def _utc(value: datetime) -> datetime:
    # The contract says UTC with "Z"; a naive time from a lax server means UTC too.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _finite(value: float, key: str) -> float:
    if not math.isfinite(value):
        raise _bad(f"field {key!r} is not a finite number")
    return value


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
    #: The authority's nonce (base64url): with the client's seed it determines the password.
    authority_nonce: str | None = None
    generator: str | None = None

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
        body = decode(data, GenerationSessionBody)
        return cls.from_body(body, body.generation_session_id, received_at=received_at)

    @classmethod
    def from_body(
        cls,
        body: GenerationSessionBody | GenerationBatchBody,
        session_id: str,
        *,
        received_at: datetime,
        nonce: str | None = None,
    ) -> GenerationSession:
        """The session ``session_id`` of a decoded ``GenerationSessionBody`` or
        ``GenerationBatchBody`` (they share every other field; ``nonce`` is the
        batch's nonce for that session)."""
        if nonce is None and isinstance(body, GenerationSessionBody):
            nonce = body.authority_nonce
        return cls(
            session_id=session_id,
            expires_in=body.expires_in,
            expires_at=received_at + timedelta(seconds=body.expires_in),
            compliance_standard=body.compliance_standard,
            standards_met=body.standards_met,
            entropy_bits=_finite(body.entropy_bits, "entropy_bits"),
            naive_entropy_bits=body.naive_entropy_bits,
            parameters=body.parameters,
            mapping_version=body.mapping_version,
            authority_nonce=nonce,
            generator=body.generator,
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
        body = decode(data, IssuedCertificateBody)
        return cls(
            cert_id=body.cert_id,
            cert_url=body.cert_url,
            token=body.token,
            compliance_standard=body.compliance_standard,
            standards_met=body.standards_met,
            entropy_bits=_finite(body.entropy_bits, "entropy_bits"),
            issued_at=_utc(body.issued_at),
            expires_at=_utc(body.expires_at),
        )

    def to_body(self) -> IssuedCertificateBody:
        return IssuedCertificateBody(
            cert_id=self.cert_id,
            cert_url=self.cert_url,
            token=self.token,
            compliance_standard=self.compliance_standard,
            standards_met=self.standards_met,
            entropy_bits=self.entropy_bits,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_body().to_dict()


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
    provenance: dict[str, Any] | None = None
    label: str | None = None
    target: Target | None = None
    kid: str | None = None
    #: Its issuance and revocation leaves in the authority's transparency log.
    log_index: int | None = None
    revocation_log_index: int | None = None

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
        return cls.from_body(decode(data, CertificateRecordBody))

    @classmethod
    def from_body(cls, body: CertificateRecordBody) -> CertificateRecord:
        target = None
        if body.target is not None:
            try:
                target = Target.from_dict(msgspec.to_builtins(body.target))
            except InvalidRequest as exc:
                raise _bad(f"field 'target': {exc.message}") from None
        return cls(
            cert_id=body.cert_id,
            cert_url=body.cert_url,
            status=body.status,
            issued_at=_utc(body.issued_at),
            expires_at=_utc(body.expires_at),
            compliance_standard=body.compliance_standard,
            standards_met=body.standards_met,
            entropy_bits=_finite(body.entropy_bits, "entropy_bits"),
            token=body.token,
            revoked_at=None if body.revoked_at is None else _utc(body.revoked_at),
            revocation_reason=body.revocation_reason,
            parameters=body.parameters,
            entropy_source=body.entropy_source,
            provenance=body.provenance,
            label=body.label,
            target=target,
            kid=body.kid,
            log_index=None if body.log is None else body.log.index,
            revocation_log_index=None if body.log is None else body.log.revocation_index,
        )

    def to_body(self) -> CertificateRecordBody:
        target = None
        if self.target is not None:
            target = msgspec.convert(self.target.to_dict(), TargetBody)
        return CertificateRecordBody(
            cert_id=self.cert_id,
            cert_url=self.cert_url,
            status=self.status,
            revoked_at=self.revoked_at,
            revocation_reason=self.revocation_reason,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            compliance_standard=self.compliance_standard,
            standards_met=self.standards_met,
            entropy_bits=self.entropy_bits,
            parameters=self.parameters,
            entropy_source=self.entropy_source,
            provenance=self.provenance,
            label=self.label,
            target=target,
            token=self.token,
            kid=self.kid,
            log=None
            if self.log_index is None
            else LogEntryBody(index=self.log_index, revocation_index=self.revocation_log_index),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_body().to_dict()


@dataclass(frozen=True, kw_only=True)
class Anomaly:
    """An anomaly flag from the audit (e.g. more than 50 certificates in 24 h)."""

    user: str
    detected_at: datetime
    count_24h: int

    def to_body(self) -> AnomalyBody:
        return AnomalyBody(user=self.user, detected_at=self.detected_at, count_24h=self.count_24h)

    def to_dict(self) -> dict[str, Any]:
        return self.to_body().to_dict()


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
        body = decode(data, AuditPageBody)
        return cls(
            items=tuple(CertificateRecord.from_body(i) for i in body.items),
            page=body.page,
            page_size=body.page_size,
            total=body.total,
            anomalies=tuple(
                Anomaly(user=a.user, detected_at=_utc(a.detected_at), count_24h=a.count_24h)
                for a in body.anomalies
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return AuditPageBody(
            items=[i.to_body() for i in self.items],
            page=self.page,
            page_size=self.page_size,
            total=self.total,
            anomalies=[a.to_body() for a in self.anomalies],
        ).to_dict()


@dataclass(frozen=True, kw_only=True)
class CertificateRequest:
    """One item of a batch issuance: a session plus what to bind the certificate to."""

    session_id: str
    credential_commitment: str | None = None
    target: Target | Mapping[str, Any] | None = None
    label: str | None = None

    def __repr__(self) -> str:
        return f"CertificateRequest(session_id='{self.session_id[:8]}...', label={self.label!r})"

    def to_wire(self) -> IssueBody:
        """The ``POST /api/generate-certificate`` body (a target is checked first).

        Raises:
            InvalidRequest: a malformed target.
        """
        target: TargetBody | UnsetType = UNSET
        if self.target is not None:
            checked = (
                self.target
                if isinstance(self.target, Target)
                else Target.from_dict(dict(self.target))
            )
            target = msgspec.convert(checked.to_dict(), TargetBody)
        return IssueBody(
            generation_session_id=self.session_id,
            credential_commitment=(
                UNSET if self.credential_commitment is None else self.credential_commitment
            ),
            target=target,
            label=UNSET if self.label is None else self.label,
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self.to_wire())
        return body
