"""Assessment: is this stored credential covered by a good certificate?

:func:`assess` is the one judge of a stored credential, used by the scan,
rotation (one or many), provisioning, the Ansible modules, the Kubernetes
operator, the rotation Lambda and the Terraform program. It reads what the
store holds, fetches the certificate's public record from the authority,
verifies its signature offline (as of issuance) against the JWKS the caller
trusts, refreshing the authority's JWKS once on an unknown key, and checks it
against what is stored. Callers decide what to *do* from the :class:`Verdict`
(keep, repair, rotate, report); they never judge again.

Statuses, most serious first:

``error``
    the certificate could not be checked (authority unreachable, store error).
``no_certificate``
    the credential has no certificate references (or names an unknown one).
``invalid``
    the certificate does not verify (bad signature, unknown key, another
    issuer) or is not the one the store names (``jti``).
``revoked``
    the authority (its record, or a status list given) revoked the certificate.
``expired``
    the certificate's ``exp`` is past.
``drifted``
    the stored credential is not the certified one: the store's current version
    is not the certificate's ``target.version`` (e.g. the KV version changed),
    the certificate names another location, the binding check fails (value
    changed, binding key missing), or the metadata names another certificate
    than the value (a provisioning stopped half-way: re-run it).
``below_requirement``
    valid, but not what the caller asked for: ``standards_met`` lacks
    ``require``, or another ``preset`` or ``keeper`` than the one given.
``expiring``
    valid, and expires within ``expiring_days`` days (still meets requirements).
``valid``
    certified, bound, current, not revoked, not expiring soon.

Every status but ``valid`` and ``expiring`` falls short (:data:`FAILING`).
A verdict also lists every finding as a machine-readable reason
(:data:`REASONS`), so that a caller can tell, say, metadata that merely lags
behind a good value (repair it) from a changed value (rotate it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import (
    BindingMismatch,
    CertificateRevoked,
    InvalidRequest,
    InvalidToken,
    NotFound,
    UnknownKey,
    one_line,
)
from ..client import AuthorityClient, CertificateRecord
from ..crypto import (
    JWKS,
    Certificate,
    StatusList,
    check_revocation,
    verify_binding,
    verify_certificate_at_issuance,
)
from ..model import CertificateClaims, Target
from ..stores import CertificateRefs, StoredCredential
from ._keepers import keeper_of
from ._verdict import (
    AUTHORITY_ERROR,
    BINDING_MISMATCH,
    BINDING_MISSING,
    EXPIRED,
    EXPIRING,
    JTI_MISMATCH,
    KEEPER_MISMATCH,
    METADATA_LAGGING,
    NO_REFERENCES,
    NO_VALUE,
    REVOKED,
    STANDARD_MISMATCH,
    STANDARD_NOT_MET,
    STATUS_LIST_MISMATCH,
    STATUSES,
    TARGET_MISMATCH,
    UNKNOWN_CERTIFICATE,
    VALUE_REPLACED,
    VERSION_MISMATCH,
    Finding,
    Verdict,
)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _verify(client: AuthorityClient, token: str, jwks: JWKS | None) -> Certificate:
    """Verify as of issuance; with the client's JWKS, refetched once on an unknown key."""
    keys = jwks if jwks is not None else client.jwks()
    try:
        return verify_certificate_at_issuance(token, keys, issuer=client.issuer)
    except UnknownKey:
        if jwks is not None:
            raise  # the caller pinned what it trusts
        return verify_certificate_at_issuance(
            token, client.jwks(refresh=True), issuer=client.issuer
        )


def assess(
    client: AuthorityClient,
    system: str,
    stored: StoredCredential,
    *,
    jwks: JWKS | None = None,
    now: datetime | None = None,
    expiring_days: float = 30,
    require: str | None = None,
    preset: str | None = None,
    keeper: str | None = None,
    status_list: StatusList | None = None,
) -> Verdict:
    """The verdict on one stored credential (see the module docstring).

    ``system`` is the store's ``target.system`` (its scheme). ``jwks`` pins
    the keys trusted (default: the client's, fetched once and cached,
    refreshed once on an unknown key). ``require`` (a preset id whose
    standard must be met), ``preset`` (the preset it must be certified for)
    and ``keeper`` (the rotation epoch it must carry; ``None``: any) are
    what the caller asks for. ``status_list`` (a verified
    :class:`~passgeni_core.crypto.StatusList`) is checked for revocation
    besides the authority's record.

    Never raises for a problem with the credential or its certificate: those
    are statuses.
    """
    at = _now(now)
    uri = str(stored.uri)
    base: dict[str, Any] = {"uri": uri, "store_version": stored.version}
    refs = stored.refs
    if stored.password is None:
        return Verdict(
            status="no_certificate",
            detail=f"no credential in key {stored.uri.key!r}",
            reasons=(NO_VALUE,),
            **base,
        )
    if refs is None:
        meta = stored.metadata_refs
        if meta is not None:
            return Verdict(
                status="drifted",
                detail=(
                    f"the metadata names certificate {meta.cert_id} but the "
                    "current value carries no certificate: it was replaced after certification"
                ),
                reasons=(VALUE_REPLACED,),
                cert_id=meta.cert_id,
                cert_url=meta.cert_url,
                certified_version=meta.version,
                **base,
            )
        return Verdict(
            status="no_certificate",
            detail="no certificate references",
            reasons=(NO_REFERENCES,),
            **base,
        )
    base.update(cert_id=refs.cert_id, cert_url=refs.cert_url)
    try:
        record = client.get_certificate(refs.cert_id)
    except NotFound as exc:
        return Verdict(
            status="no_certificate",
            detail=f"the authority knows no certificate {refs.cert_id}",
            reasons=(UNKNOWN_CERTIFICATE,),
            error=exc,
            **base,
        )
    except Exception as exc:
        return _error(exc, base)
    try:
        cert = _verify(client, record.token, jwks)
    except InvalidToken as exc:
        return Verdict(
            status="invalid",
            detail=one_line(exc, with_code=True),
            reasons=(exc.code,),
            record=record,
            error=exc,
            **base,
        )
    except Exception as exc:
        return _error(exc, base, record=record)
    claims = cert.claims
    base.update(
        standard=claims.compliance_standard,
        standards_met=tuple(claims.standards_met),
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
        certified_version=claims.target.version if claims.target else None,
        revocation_reason=record.revocation_reason,
        refs=CertificateRefs(
            cert_id=refs.cert_id,
            cert_url=refs.cert_url,
            standard=claims.compliance_standard,
            expires_at=claims.expires_at,
            version=stored.version,
        ),
        record=record,
    )
    if claims.jti != refs.cert_id:
        return Verdict(
            status="invalid",
            detail=f"the authority returned certificate {claims.jti}, not {refs.cert_id}",
            reasons=(JTI_MISMATCH,),
            **base,
        )
    found = _revocation(cert, record, status_list)
    if record.status == "expired" or at >= claims.expires_at:
        found.append((EXPIRED, "expired", f"expired at {_iso(claims.expires_at)}"))
    found += _drift(system, stored, refs, claims.target)
    found += _binding(cert, stored)
    found += _asked(claims, require, preset, keeper)
    if not any(reason == EXPIRED for reason, _, _ in found):
        left = claims.expires_at - at
        if left <= timedelta(days=expiring_days):
            found.append((EXPIRING, "expiring", f"expires in {max(0, left.days)} day(s)"))
    if not found:
        return Verdict(status="valid", certificate=cert, **base)
    worst = max(found, key=lambda f: STATUSES.index(f[1]))
    return Verdict(
        status=worst[1],
        detail=worst[2],
        reasons=tuple(reason for reason, _, _ in found),
        certificate=cert,
        **base,
    )


def _error(exc: Exception, base: dict[str, Any], **extra: Any) -> Verdict:
    return Verdict(
        status="error",
        detail=one_line(exc, with_code=True),
        reasons=(AUTHORITY_ERROR,),
        error=exc,
        **base,
        **extra,
    )


def _revocation(
    cert: Certificate, record: CertificateRecord, status_list: StatusList | None
) -> list[Finding]:
    if record.status == "revoked":
        when = _iso(record.revoked_at) or "an unknown time"
        return [
            (
                REVOKED,
                "revoked",
                f"revoked at {when}: {record.revocation_reason or 'no reason given'}",
            )
        ]
    if status_list is None:
        return []
    try:
        check_revocation(cert, status_list)
    except CertificateRevoked as exc:
        return [(REVOKED, "revoked", exc.message)]
    except InvalidRequest as exc:
        return [(STATUS_LIST_MISMATCH, "error", exc.message)]
    return []


def _drift(
    system: str, stored: StoredCredential, refs: CertificateRefs, target: Target | None
) -> list[Finding]:
    found: list[Finding] = []
    if target is not None:
        if target.system != system or target.path != stored.uri.target_path:
            found.append(
                (
                    TARGET_MISMATCH,
                    "drifted",
                    f"certified for {target.system}:{target.path}, found at {stored.uri}",
                )
            )
        elif (
            target.version is not None
            and stored.version is not None
            and target.version != stored.version
        ):
            found.append(
                (
                    VERSION_MISMATCH,
                    "drifted",
                    f"the store's current version is {stored.version}, the certificate is "
                    f"for version {target.version}",
                )
            )
    meta = stored.metadata_refs
    if meta is not None and meta.cert_id != refs.cert_id:
        found.append(
            (
                METADATA_LAGGING,
                "drifted",
                f"the metadata names certificate {meta.cert_id}, the value {refs.cert_id}: "
                "an earlier provisioning stopped half-way; re-run it",
            )
        )
    return found


def _binding(cert: Certificate, stored: StoredCredential) -> list[Finding]:
    credential = stored.credential
    if credential is None:
        return [(BINDING_MISSING, "drifted", "no binding key is stored beside the password")]
    try:
        verify_binding(cert, credential.password, credential.binding_key)
    except BindingMismatch:
        return [
            (
                BINDING_MISMATCH,
                "drifted",
                "the binding check fails: the value changed after certification",
            )
        ]
    return []


def _asked(
    claims: CertificateClaims, require: str | None, preset: str | None, keeper: str | None
) -> list[Finding]:
    found: list[Finding] = []
    if require is not None and not claims.meets(require):
        met = ", ".join(claims.standards_met) or "no standard"
        found.append((STANDARD_NOT_MET, "below_requirement", f"meets {met}, not {require}"))
    if preset is not None and not claims.certified_for(preset):
        found.append(
            (
                STANDARD_MISMATCH,
                "below_requirement",
                f"certified for {claims.compliance_standard}, not {preset}",
            )
        )
    if keeper is not None and keeper_of(claims.label) != keeper:
        found.append(
            (
                KEEPER_MISMATCH,
                "below_requirement",
                f"certified for keeper {keeper_of(claims.label)!r}, not {keeper!r}",
            )
        )
    return found
