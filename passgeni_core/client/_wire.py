"""The authority's HTTP API as data: one msgspec ``Struct`` per JSON body.

This module is the wire contract, written once. The client decodes the
authority's answers with these types and encodes its requests with them;
the authority builds its answers from them; its OpenAPI document is
generated from them (:func:`openapi_components`); ``docs/api-contract.md``
is checked against them by a test. A field added here is added everywhere.

Answers are decoded leniently about what is *extra* (an unknown field is
ignored, so a newer authority stays readable) and strictly about what is
there (a field of the wrong type is an error). Requests forbid unknown
fields, as the authority does. Optional request fields are ``UNSET``
(left out of the JSON), not ``null``.

msgspec, not pydantic: it imports in a fraction of pydantic's time, and the
CLI's start-up time counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "ANSWER_BODIES",
    "REQUEST_BODIES",
    "AnomalyBody",
    "AuditPageBody",
    "CertificateRecordBody",
    "CertificateStatus",
    "ErrorBody",
    "GenerateBatchBody",
    "GenerateBody",
    "GenerationBatchBody",
    "GenerationSessionBody",
    "HealthBody",
    "IssueBatchBody",
    "IssueBody",
    "IssueErrorBody",
    "IssuedBatchBody",
    "IssuedCertificateBody",
    "JwkBody",
    "JwksBody",
    "LogEntryBody",
    "LogProofBody",
    "ManifestBody",
    "ManifestSignatureBody",
    "RevokeBody",
    "ScanFindingBody",
    "ScanReceiptBody",
    "ScanStatus",
    "ScanSubmissionBody",
    "SigningKeyEventBody",
    "SigningKeysBody",
    "StatusListsBody",
    "TargetBody",
    "UsageBody",
    "openapi_components",
]

#: Where OpenAPI documents keep their component schemas.
REF_TEMPLATE = "#/components/schemas/{name}"

NonEmpty = Annotated[str, Meta(min_length=1)]
#: The issuance limits (items of a batch, sessions of a batch).
BatchSize = Annotated[int, Meta(ge=1, le=1000)]
CertificateStatus = Literal["valid", "expired", "revoked"]
#: An instant: RFC 3339, UTC, whole seconds (``2026-11-22T03:00:00Z``).
Instant = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]


class _Request(Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A request body: no unknown fields; ``UNSET`` fields are left out."""


class _Answer(Struct, kw_only=True, frozen=True):
    """An answer body (unknown fields are ignored when decoding)."""

    def to_dict(self) -> dict[str, Any]:
        """The body as the JSON the API sends, decoded (lists, not tuples)."""
        out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return out


# --- shared parts -----------------------------------------------------------------------


class TargetBody(Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Where a credential is stored (``passgeni_core.model.Target`` on the wire)."""

    system: str
    path: str
    version: str | UnsetType = UNSET
    address: str | UnsetType = UNSET
    namespace: str | UnsetType = UNSET


class ErrorBody(_Answer, kw_only=True, frozen=True):
    """Every error answer: a stable code (``PassgeniError.code``) and a one-line message."""

    code: str
    message: str


# --- POST /api/generate, /api/generate-batch ----------------------------------------------


#: base64url of 32 bytes (a seed commitment, an authority nonce).
B64_32 = Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{43}$")]


class GenerateBody(_Request, kw_only=True):
    """``POST /api/generate``: public parameters only (never a password)."""

    compliance_standard: str | UnsetType = UNSET
    #: An alias of ``compliance_standard``.
    preset: str | UnsetType = UNSET
    #: ``GenerationParameters.to_dict()`` fields.
    parameters: dict[str, Any] | UnsetType = UNSET
    #: ``EntropySource.to_dict()`` fields.
    entropy_source: dict[str, Any] | UnsetType = UNSET
    #: The client's commitment to its generation seed (required; see docs/generator.md).
    seed_commitment: B64_32 | UnsetType = UNSET


class GenerateBatchBody(GenerateBody, kw_only=True):
    """``POST /api/generate-batch``: a generate body and how many sessions."""

    count: BatchSize
    #: One seed commitment per session (instead of ``seed_commitment``).
    seed_commitments: list[B64_32] | UnsetType = UNSET


class GenerationSessionBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``POST /api/generate``: a single-use session and the re-validated claims."""

    generation_session_id: NonEmpty
    expires_in: int
    compliance_standard: NonEmpty
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None = None
    parameters: dict[str, Any] = {}
    mapping_version: str | None = None
    #: The authority's nonce for this session: the password derives from it and the seed.
    authority_nonce: str | None = None
    #: The generator the certificate will name (``passgeni-shake256-v1``).
    generator: str | None = None

    def __repr__(self) -> str:
        # The session id is a bearer capability for one certificate.
        return (
            f"GenerationSessionBody(compliance_standard={self.compliance_standard!r}, "
            f"entropy_bits={self.entropy_bits!r}, expires_in={self.expires_in!r})"
        )


class GenerationBatchBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``POST /api/generate-batch``: N sessions with the same parameters."""

    generation_session_ids: list[NonEmpty]
    expires_in: int
    compliance_standard: NonEmpty
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None = None
    parameters: dict[str, Any] = {}
    mapping_version: str | None = None
    #: One nonce per session, in order.
    authority_nonces: list[str] = []
    generator: str | None = None

    def __repr__(self) -> str:
        return (
            f"GenerationBatchBody(count={len(self.generation_session_ids)}, "
            f"compliance_standard={self.compliance_standard!r})"
        )


# --- POST /api/generate-certificate, /api/generate-certificates ---------------------------


class IssueBody(_Request, kw_only=True):
    """``POST /api/generate-certificate``: redeem a session for a certificate."""

    generation_session_id: str
    #: base64url of a 32-byte HMAC: binds the certificate to the credential. Refused for
    #: sessions opened with a seed commitment (all new sessions): kept in the contract so
    #: that the refusal names it.
    credential_commitment: Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{43}$")] | UnsetType = UNSET
    target: TargetBody | UnsetType = UNSET
    label: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET

    def __repr__(self) -> str:
        return f"IssueBody(label={self.label!r})"


class IssueBatchBody(_Request, kw_only=True):
    """``POST /api/generate-certificates``: many redemptions in one request."""

    items: Annotated[list[IssueBody], Meta(max_length=1000)]


class IssuedCertificateBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``POST /api/generate-certificate``: the signed certificate."""

    cert_id: NonEmpty
    cert_url: NonEmpty
    #: The ES256 JWT.
    token: NonEmpty
    compliance_standard: NonEmpty
    standards_met: tuple[str, ...]
    entropy_bits: float
    issued_at: Instant
    expires_at: Instant


class IssueErrorBody(_Answer, kw_only=True, frozen=True):
    """A failed item of a batch (issuance, lookup): the others still get theirs."""

    error: ErrorBody


# A list of either object cannot be a msgspec type (two untagged object types in
# one union), so the entries are checked one by one (see the client) and the
# schema says what they are.
_BATCH_ENTRY = {
    "anyOf": [
        {"$ref": REF_TEMPLATE.format(name="IssuedCertificateBody")},
        {"$ref": REF_TEMPLATE.format(name="IssueErrorBody")},
    ]
}
_LOOKUP_ENTRY = {
    "anyOf": [_BATCH_ENTRY["anyOf"][1], {"$ref": REF_TEMPLATE.format(name="CertificateRecordBody")}]
}


class IssuedBatchBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``POST /api/generate-certificates``: one entry per item, in order."""

    certificates: Annotated[list[Any], Meta(extra_json_schema={"items": _BATCH_ENTRY})]


# --- certificates, revocation, audit ------------------------------------------------------


class LogEntryBody(_Answer, kw_only=True, frozen=True):
    """A certificate's leaves in the authority's transparency log (docs/transparency-log.md)."""

    #: The index of its issuance leaf (data: the certificate's token).
    index: Annotated[int, Meta(ge=0)]
    #: The index of its revocation leaf, once revoked.
    revocation_index: Annotated[int, Meta(ge=0)] | None = None


class LogProofBody(_Answer, kw_only=True, frozen=True):
    """``GET /log/proof/inclusion/{index}`` and ``/log/proof/consistency``: an RFC 9162
    proof, its hashes in standard base64 (deepest first)."""

    hashes: list[str]


class CertificateRecordBody(_Answer, kw_only=True, frozen=True):
    """A stored certificate with its current status (``GET /api/certificates/{id}``)."""

    cert_id: NonEmpty
    cert_url: NonEmpty
    status: CertificateStatus
    revoked_at: Instant | None = None
    revocation_reason: str | None = None
    issued_at: Instant
    expires_at: Instant
    compliance_standard: NonEmpty
    standards_met: tuple[str, ...]
    entropy_bits: float
    parameters: dict[str, Any] = {}
    #: Declared by the client (the certificate's ``entropy_source`` claim).
    entropy_source: dict[str, Any] = {}
    #: What the authority observed, what the client declared, the FIPS rule (the
    #: certificate's ``provenance`` claim; ``null`` for certificates issued before it).
    provenance: dict[str, Any] | None = None
    label: str | None = None
    target: TargetBody | None = None
    token: NonEmpty
    kid: str | None = None
    #: Where it is in the transparency log (``null`` for a log-less authority).
    log: LogEntryBody | None = None


class LookupBody(_Request, kw_only=True):
    """``POST /api/certificates/lookup``: the public records of many certificates at once."""

    cert_ids: Annotated[list[NonEmpty], Meta(min_length=1, max_length=500)]


class LookupAnswerBody(_Answer, kw_only=True, frozen=True):
    """Its answer: per id, in order, the record or (unknown, rate-limited) the error."""

    certificates: Annotated[list[Any], Meta(extra_json_schema={"items": _LOOKUP_ENTRY})]


class RevokeBody(_Request, kw_only=True):
    """``POST /api/certificates/{id}/revoke`` (the answer is the certificate record)."""

    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class AnomalyBody(_Answer, kw_only=True, frozen=True):
    """An anomaly flag of the audit (e.g. more than 50 certificates in 24 h)."""

    user: str
    detected_at: Instant
    count_24h: int


class UsageBody(_Answer, kw_only=True, frozen=True):
    """The caller's certificates this calendar month (UTC) against its plan's quota."""

    #: The plan that applies (``None``: no plan, no quota).
    plan: str | None
    #: ``YYYY-MM``.
    month: str
    used: int
    #: Certificates per calendar month (``None``: unlimited).
    limit: int | None
    remaining: int | None
    resets_at: Instant


class AuditPageBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``GET /api/audit``: one page of the caller's certificates."""

    items: list[CertificateRecordBody]
    page: int
    page_size: int
    total: int
    anomalies: list[AnomalyBody] = []
    usage: UsageBody | None = None


# --- keys ---------------------------------------------------------------------------------


class JwkBody(_Answer, kw_only=True, frozen=True):
    """One public signing key (RFC 7517 EC P-256)."""

    kty: str
    crv: str
    x: str
    y: str
    kid: str
    alg: str
    use: str


class JwksBody(_Answer, kw_only=True, frozen=True):
    """``GET /.well-known/jwks.json``: every key whose certificates can still be verified."""

    keys: list[JwkBody]


class SigningKeyEventBody(_Answer, kw_only=True, frozen=True):
    """When one signing key was created and retired."""

    kid: str
    created_at: Instant
    retired_at: Instant | None = None


class SigningKeysBody(_Answer, kw_only=True, frozen=True):
    """``GET /api/signing-keys``: every key the authority ever signed with, the active one first."""

    keys: list[JwkBody]
    history: list[SigningKeyEventBody]


# --- status lists, evidence, health -------------------------------------------------------


class StatusListsBody(_Answer, kw_only=True, frozen=True):
    """``GET /status``: the URI of every signed status list."""

    status_lists: list[str]


class ManifestBody(_Request, kw_only=True):
    """``POST /api/evidence/sign-manifest``: the SHA-256 of an evidence manifest."""

    manifest_sha256: Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]


class ManifestSignatureBody(_Answer, kw_only=True, frozen=True):
    """The authority's signature of an evidence manifest (a ``passgeni-manifest+jwt``)."""

    token: NonEmpty
    kid: str
    issued_at: Instant


# --- POST /api/scans (the dashboard's coverage) -----------------------------------------

#: A scan's status of one credential, least serious first: the one list of statuses
#: (``passgeni_core.workflows.STATUSES`` and the authority's checks are made from it).
ScanStatus = Literal[
    "valid",
    "expiring",
    "below_requirement",
    "drifted",
    "expired",
    "revoked",
    "invalid",
    "no_certificate",
    "error",
]
ReasonCode = Annotated[str, Meta(pattern="^[a-z0-9_]{1,40}$")]


class ScanFindingBody(_Request, kw_only=True):
    """One credential of a submitted scan: where it is and how it stands, never its value."""

    uri: Annotated[str, Meta(min_length=1, max_length=1024)]
    status: ScanStatus
    #: The judge's machine-readable reasons (``passgeni_core.workflows.REASONS``).
    reasons: Annotated[list[ReasonCode], Meta(max_length=20)] = []
    cert_id: Annotated[str, Meta(min_length=1, max_length=40)] | UnsetType = UNSET
    standard: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    expires_at: Instant | UnsetType = UNSET


class ScanSubmissionBody(_Request, kw_only=True):
    """``POST /api/scans``: a coverage scan's result (``passgeni scan --submit``)."""

    credentials: Annotated[list[ScanFindingBody], Meta(max_length=10000)]
    scanned_at: Instant | UnsetType = UNSET
    require: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    expiring_days: Annotated[int, Meta(ge=0, le=3650)] = 30


class ScanReceiptBody(_Answer, kw_only=True, frozen=True):
    """The answer to ``POST /api/scans``: what was recorded for the dashboard."""

    scan_id: int
    credentials: int
    failing: int
    submitted_at: Instant


class HealthBody(_Answer, kw_only=True, frozen=True):
    """``GET /healthz``."""

    status: str


#: Every request body, and every answer body, of the API.
REQUEST_BODIES: tuple[type[Struct], ...] = (
    GenerateBody,
    GenerateBatchBody,
    IssueBody,
    IssueBatchBody,
    RevokeBody,
    LookupBody,
    ManifestBody,
    ScanSubmissionBody,
    ScanFindingBody,
)
ANSWER_BODIES: tuple[type[Struct], ...] = (
    GenerationSessionBody,
    GenerationBatchBody,
    IssuedCertificateBody,
    IssueErrorBody,
    IssuedBatchBody,
    CertificateRecordBody,
    LookupAnswerBody,
    AuditPageBody,
    AnomalyBody,
    UsageBody,
    ErrorBody,
    JwksBody,
    JwkBody,
    SigningKeysBody,
    SigningKeyEventBody,
    StatusListsBody,
    ManifestSignatureBody,
    HealthBody,
    TargetBody,
    LogEntryBody,
    LogProofBody,
    ScanReceiptBody,
)


def openapi_components() -> dict[str, Any]:
    """The OpenAPI component schemas of every body, by Struct name."""
    _refs, components = msgspec.json.schema_components(
        (*REQUEST_BODIES, *ANSWER_BODIES), ref_template=REF_TEMPLATE
    )
    return components
