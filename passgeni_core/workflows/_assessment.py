"""Assessment: is this stored credential covered by a good certificate?

The one judge of a stored credential: it reads what the store holds, fetches
the certificate's public record from the authority, verifies its signature
offline against the authority's JWKS and checks it against what is stored.
Statuses, most serious first:

``error``
    the certificate could not be checked (authority unreachable, store error).
``no_certificate``
    the credential has no certificate references (or names an unknown one).
``invalid``
    the certificate does not verify (bad signature, unknown key, another issuer).
``revoked``
    the authority revoked the certificate.
``expired``
    the certificate's ``exp`` is past.
``drifted``
    the stored credential is not the certified one: the store's current version
    is not the certificate's ``target.version`` (e.g. the KV version changed),
    the certificate names another location, the binding check fails (value
    changed, binding key missing), or the metadata names another certificate
    than the value (a provisioning stopped half-way: re-run it).
``below_requirement``
    valid, but the certificate's ``standards_met`` lacks ``require``.
``expiring``
    valid, and expires within ``expiring_days`` days (still meets requirements).
``valid``
    certified, bound, current, not revoked, not expiring soon.

Every status but ``valid`` and ``expiring`` falls short (:data:`FAILING`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .._errors import (
    BindingMismatch,
    InvalidToken,
    NotFound,
    UnknownKey,
    one_line,
)
from ..client import AuthorityClient, CertificateRecord
from ..crypto import JWKS, verify_binding, verify_certificate_at_issuance
from ..stores import (
    CertificateRefs,
    StoredCredential,
)

Status = Literal[
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
STATUSES: tuple[str, ...] = (
    "valid",
    "expiring",
    "below_requirement",
    "drifted",
    "expired",
    "revoked",
    "invalid",
    "no_certificate",
    "error",
)
FAILING = frozenset(STATUSES) - {"valid", "expiring"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class CoverageEntry:
    """One credential's coverage. Public facts only (no password, no binding key)."""

    uri: str
    status: Status
    detail: str = ""
    cert_id: str | None = None
    cert_url: str | None = None
    standard: str | None = None
    standards_met: tuple[str, ...] = ()
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    store_version: str | None = None
    certified_version: str | None = None
    revocation_reason: str | None = None
    #: Full references (with standard and expiry from the verified certificate).
    refs: CertificateRefs | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.status not in FAILING

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
        }


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def assess(
    client: AuthorityClient,
    system: str,
    stored: StoredCredential,
    *,
    jwks: JWKS | None = None,
    now: datetime | None = None,
    expiring_days: int = 30,
    require: str | None = None,
) -> CoverageEntry:
    """The coverage status of one stored credential (see the module docstring).

    Never raises for a problem with the credential or its certificate: those
    are statuses. ``jwks`` defaults to the client's (fetched once, cached).
    """
    at = _now(now)
    uri = str(stored.uri)
    base: dict[str, Any] = {"uri": uri, "store_version": stored.version}
    refs = stored.refs
    if stored.password is None:
        return CoverageEntry(
            status="no_certificate",
            detail=f"no credential in key {stored.uri.key!r}",
            **base,
        )
    if refs is None:
        if stored.metadata_refs is not None:
            return CoverageEntry(
                status="drifted",
                detail=(
                    f"the metadata names certificate {stored.metadata_refs.cert_id} but the "
                    "current value carries no certificate: it was replaced after certification"
                ),
                cert_id=stored.metadata_refs.cert_id,
                cert_url=stored.metadata_refs.cert_url,
                certified_version=stored.metadata_refs.version,
                **base,
            )
        return CoverageEntry(status="no_certificate", detail="no certificate references", **base)
    base.update(cert_id=refs.cert_id, cert_url=refs.cert_url)
    try:
        record: CertificateRecord = client.get_certificate(refs.cert_id)
    except NotFound:
        return CoverageEntry(
            status="no_certificate",
            detail=f"the authority knows no certificate {refs.cert_id}",
            **base,
        )
    except Exception as exc:
        return CoverageEntry(status="error", detail=one_line(exc, with_code=True), **base)
    try:
        keys = jwks if jwks is not None else client.jwks()
        try:
            cert = verify_certificate_at_issuance(record.token, keys, issuer=client.issuer)
        except UnknownKey:
            if jwks is not None:
                raise
            cert = verify_certificate_at_issuance(
                record.token, client.jwks(refresh=True), issuer=client.issuer
            )
    except InvalidToken as exc:
        return CoverageEntry(status="invalid", detail=one_line(exc, with_code=True), **base)
    except Exception as exc:
        return CoverageEntry(status="error", detail=one_line(exc, with_code=True), **base)
    claims = cert.claims
    target = claims.target
    base.update(
        standard=claims.compliance_standard,
        standards_met=tuple(claims.standards_met),
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
        certified_version=target.version if target else None,
        revocation_reason=record.revocation_reason,
        refs=CertificateRefs(
            cert_id=refs.cert_id,
            cert_url=refs.cert_url,
            standard=claims.compliance_standard,
            expires_at=claims.expires_at,
            version=stored.version,
        ),
    )
    if claims.jti != refs.cert_id:
        return CoverageEntry(
            status="invalid",
            detail=f"the authority returned certificate {claims.jti}, not {refs.cert_id}",
            **base,
        )
    if record.status == "revoked":
        when = _iso(record.revoked_at) or "an unknown time"
        return CoverageEntry(
            status="revoked",
            detail=f"revoked at {when}: {record.revocation_reason or 'no reason given'}",
            **base,
        )
    if record.status == "expired" or at >= claims.expires_at:
        return CoverageEntry(
            status="expired", detail=f"expired at {_iso(claims.expires_at)}", **base
        )
    drift = _drift(system, stored, refs, claims.target)
    if drift is None:
        credential = stored.credential
        if credential is None:
            drift = "no binding key is stored beside the password"
        else:
            try:
                verify_binding(cert, credential.password, credential.binding_key)
            except BindingMismatch:
                drift = "the binding check fails: the value changed after certification"
    if drift is not None:
        return CoverageEntry(status="drifted", detail=drift, **base)
    if require is not None and require not in claims.standards_met:
        return CoverageEntry(
            status="below_requirement",
            detail=f"meets {', '.join(claims.standards_met) or 'no standard'}, not {require}",
            **base,
        )
    if claims.expires_at - at <= timedelta(days=expiring_days):
        days = max(0, (claims.expires_at - at).days)
        return CoverageEntry(status="expiring", detail=f"expires in {days} day(s)", **base)
    return CoverageEntry(status="valid", **base)


def _drift(system: str, stored: StoredCredential, refs: CertificateRefs, target: Any) -> str | None:
    if target is not None:
        if target.system != system or target.path != stored.uri.target_path:
            return f"certified for {target.system}:{target.path}, found at {stored.uri}"
        if (
            target.version is not None
            and stored.version is not None
            and target.version != stored.version
        ):
            return (
                f"the store's current version is {stored.version}, the certificate is for "
                f"version {target.version}"
            )
    meta = stored.metadata_refs
    if meta is not None and meta.cert_id != refs.cert_id:
        return (
            f"the metadata names certificate {meta.cert_id}, the value {refs.cert_id}: "
            "an earlier provisioning stopped half-way; re-run it"
        )
    return None
