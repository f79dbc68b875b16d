"""The verdict of the one judge (:func:`passgeni_core.workflows.assess`): statuses and reasons.

A :class:`Verdict` carries the scan's ``status`` and ``detail`` and every
finding as a stable, machine-readable reason (:data:`REASONS`), so that
callers can act on it (keep, repair, rotate, report) without judging again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from .._errors import InvalidRequest
from ..client import CertificateRecord, ScanStatus
from ..crypto import Certificate
from ..model import CertificateClaims
from ..stores import CertificateRefs
from ._keepers import keeper_of

#: The statuses, least serious first (a verdict's status is its most serious finding's):
#: one list, the wire contract's (``passgeni_core.client.ScanStatus``).
Status = ScanStatus
STATUSES: tuple[str, ...] = get_args(ScanStatus)
FAILING = frozenset(STATUSES) - {"valid", "expiring"}
#: One finding: (reason, status, detail).
Finding = tuple[str, Status, str]

# --- reasons: one per finding, stable strings callers can act on ---------------------------------

#: ``error``: the authority (or the JWKS) could not be asked.
AUTHORITY_ERROR = "authority_error"
#: ``error``: the status list given is not the one the certificate points at.
STATUS_LIST_MISMATCH = "status_list_mismatch"
#: ``no_certificate``: no password at the key.
NO_VALUE = "no_value"
#: ``no_certificate``: the value carries no certificate references.
NO_REFERENCES = "no_references"
#: ``no_certificate``: the authority knows no certificate of that id.
UNKNOWN_CERTIFICATE = "unknown_certificate"
#: ``invalid``: the authority's certificate has another ``jti`` than the store names.
JTI_MISMATCH = "jti_mismatch"
#: ``invalid``: the authority's record holds another token than the certificate given.
RECORD_MISMATCH = "record_mismatch"
#: ``invalid`` also carries the verification error's code (``bad_signature``,
#: ``unknown_key``, ``wrong_issuer``, ``malformed_token``...) as its reason.
#: ``revoked``: revoked by the authority's record or the status list.
REVOKED = "revoked"
#: ``expired``: ``exp`` is past (or the authority records it expired).
EXPIRED = "expired"
#: ``drifted``: the metadata names a certificate but the value carries none.
VALUE_REPLACED = "value_replaced"
#: ``drifted``: the certificate names another system or location.
TARGET_MISMATCH = "target_mismatch"
#: ``drifted``: the store's current version is not the certified one.
VERSION_MISMATCH = "version_mismatch"
#: ``drifted``: the value carries the certificate, the metadata still names another
#: (a write stopped before the metadata: repair the metadata, do not rotate).
METADATA_LAGGING = "metadata_lagging"
#: ``drifted``: no (readable) binding key beside the password.
BINDING_MISSING = "binding_missing"
#: ``drifted``: the password does not match the certificate's commitment.
BINDING_MISMATCH = "binding_mismatch"
#: ``drifted``: the stored seed does not re-derive the stored password (or is not the
#: committed one): the value is not the generated one the certificate is for.
PROVENANCE_MISMATCH = "provenance_mismatch"
#: ``below_requirement``: ``standards_met`` lacks ``require``.
STANDARD_NOT_MET = "standard_not_met"
#: ``below_requirement``: certified for another preset than ``preset``.
STANDARD_MISMATCH = "standard_mismatch"
#: ``below_requirement``: certified for another rotation epoch than ``keeper``.
KEEPER_MISMATCH = "keeper_mismatch"
#: ``expiring``: expires within ``expiring_days``.
EXPIRING = "expiring"

REASONS: tuple[str, ...] = (
    AUTHORITY_ERROR,
    STATUS_LIST_MISMATCH,
    NO_VALUE,
    NO_REFERENCES,
    UNKNOWN_CERTIFICATE,
    JTI_MISMATCH,
    RECORD_MISMATCH,
    REVOKED,
    EXPIRED,
    VALUE_REPLACED,
    TARGET_MISMATCH,
    VERSION_MISMATCH,
    METADATA_LAGGING,
    BINDING_MISSING,
    BINDING_MISMATCH,
    PROVENANCE_MISMATCH,
    STANDARD_NOT_MET,
    STANDARD_MISMATCH,
    KEEPER_MISMATCH,
    EXPIRING,
)
#: Findings that leave the stored value covered: keep it (and repair the metadata).
_VALUE_COVERED = frozenset({EXPIRING, METADATA_LAGGING})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The judgement of one stored credential. Public facts only (no password, no binding key).

    ``status`` and ``detail`` are what a scan reports; ``reasons`` lists every
    finding (empty when ``valid``); ``certificate`` is the verified certificate
    whenever its signature checked out (even if revoked, expired or drifted).
    """

    uri: str
    status: Status
    detail: str = ""
    reasons: tuple[str, ...] = ()
    cert_id: str | None = None
    cert_url: str | None = None
    standard: str | None = None
    standards_met: tuple[str, ...] = ()
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    store_version: str | None = None
    certified_version: str | None = None
    revocation_reason: str | None = None
    #: Which proof tied the stored value to the certificate: ``generation`` (re-derived
    #: from its seed: generated as certified), ``binding`` (an older certificate: the
    #: certified value, how it was made not provable), or None (not checked, or failed).
    proof: str | None = None
    #: Full references (with standard and expiry from the verified certificate).
    refs: CertificateRefs | None = field(default=None, compare=False)
    #: The verified certificate (signature, issuer, ``jti`` checked), else ``None``.
    certificate: Certificate | None = field(default=None, compare=False, repr=False)
    #: The authority's record of it (its URL, revocation time and reason).
    record: CertificateRecord | None = field(default=None, compare=False, repr=False)
    #: For ``error`` (and unknown or unverifiable certificates): what was raised.
    error: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status not in FAILING

    @property
    def claims(self) -> CertificateClaims | None:
        """The verified claims (``None`` when the signature did not check out)."""
        return None if self.certificate is None else self.certificate.claims

    @property
    def keeper(self) -> str | None:
        """The rotation epoch recorded in the verified certificate's label."""
        return None if self.claims is None else keeper_of(self.claims.label)

    @property
    def value_covered(self) -> bool:
        """The stored value is certified, bound, current and as asked (valid or expiring);
        only the metadata beside it may lag (:data:`METADATA_LAGGING`): keep and repair it."""
        return (
            self.certificate is not None
            and self.status != "error"
            and set(self.reasons) <= _VALUE_COVERED
        )

    def raise_for_error(self) -> None:
        """Raise what kept the credential from being judged (status ``error``), else nothing.

        For callers that must not act on a credential they could not check
        (rotation never rotates because the authority could not be asked).
        """
        if self.status != "error":
            return
        if self.error is not None:
            raise self.error
        raise InvalidRequest(f"{self.uri}: {self.detail}")

    def has(self, *reasons: str) -> bool:
        """Whether any of ``reasons`` is among the findings."""
        return any(r in self.reasons for r in reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "status": self.status,
            "detail": self.detail,
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "standard": self.standard,
            "standards_met": list(self.standards_met),
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "store_version": self.store_version,
            "certified_version": self.certified_version,
            "revocation_reason": self.revocation_reason,
            "proof": self.proof,
        }


#: The scan's name for a verdict (one entry of a coverage report).
CoverageEntry = Verdict
