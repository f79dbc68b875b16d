"""The certificate half of the one judge: is this certificate good, whoever holds it?

:func:`assess_certificate` judges a certificate given by its token or its id
(``certificate_info`` in Ansible, ``passgeni verify``): the signature as of
issuance against the JWKS the caller trusts, ``jti``, the authority's record
(the same token, its revocation), a status list, expiry, and what the caller
asks for. :func:`~passgeni_core.workflows.assess` judges a *stored* credential
with the same checks plus the ones about the store (target, version, binding):
both are built from the functions here, so that no caller judges a
certificate differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import (
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
    aware_now,
    check_revocation,
    verify_certificate_at_issuance,
)
from ..model import EMBEDDED_ISSUER_NOTE, CertificateClaims
from ._keepers import keeper_of
from ._verdict import (
    AUTHORITY_ERROR,
    EXPIRED,
    EXPIRING,
    JTI_MISMATCH,
    KEEPER_MISMATCH,
    RECORD_MISMATCH,
    REVOKED,
    STANDARD_MISMATCH,
    STANDARD_NOT_MET,
    STATUS_LIST_MISMATCH,
    STATUSES,
    UNKNOWN_CERTIFICATE,
    Finding,
    Verdict,
)

__all__ = ["assess_certificate"]


@dataclass(frozen=True, kw_only=True)
class Asked:
    """What the caller asks of a certificate besides being good (``None``: anything)."""

    require: str | None = None
    preset: str | None = None
    keeper: str | None = None
    expiring_days: float = 30


@dataclass(kw_only=True)
class Checked:
    """A certificate whose signature, ``jti`` and record checked out, with its findings so far."""

    cert: Certificate
    record: CertificateRecord | None
    facts: dict[str, Any] = field(default_factory=dict)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_verdict(exc: Exception, base: dict[str, Any], **extra: Any) -> Verdict:
    return Verdict(
        status="error",
        detail=one_line(exc, with_code=True),
        reasons=(AUTHORITY_ERROR,),
        error=exc,
        **base,
        **extra,
    )


def _verify(
    client: AuthorityClient | None, token: str, jwks: JWKS | None, issuer: str | None
) -> Certificate:
    """Verify as of issuance; with the client's JWKS, refetched once on an unknown key."""
    if client is None:
        assert jwks is not None and issuer is not None  # checked by the callers
        return verify_certificate_at_issuance(token, jwks, issuer=issuer)
    expected = issuer or client.issuer
    keys = jwks if jwks is not None else client.jwks()
    try:
        return verify_certificate_at_issuance(token, keys, issuer=expected)
    except UnknownKey:
        if jwks is not None:
            raise  # the caller pinned what it trusts
        return verify_certificate_at_issuance(token, client.jwks(refresh=True), issuer=expected)


def fetch_and_verify(
    client: AuthorityClient | None,
    base: dict[str, Any],
    *,
    token: str | None = None,
    cert_id: str | None = None,
    jwks: JWKS | None = None,
    issuer: str | None = None,
    online: bool = True,
    fetched: CertificateRecord | Exception | None = None,
) -> Checked | Verdict:
    """The certificate verified as of issuance, or the verdict saying why it is not.

    Given ``cert_id``, the token is the authority's record; given ``token``, the
    record is fetched (``online``) and must hold that very token. ``base`` holds the
    verdict's fields known so far and is completed with the certificate's facts.
    ``fetched`` is the answer the authority already gave for ``cert_id`` (its record,
    or the error it answered, from a bulk lookup): judged exactly as if asked here.
    """
    record: CertificateRecord | None = None
    if token is None:
        if client is None or cert_id is None:
            raise InvalidRequest("give a certificate token, or an id and an authority to ask")
        try:
            if isinstance(fetched, Exception):
                raise fetched
            record = fetched if fetched is not None else client.get_certificate(cert_id)
        except NotFound as exc:
            return Verdict(
                status="no_certificate",
                detail=f"the authority knows no certificate {cert_id}",
                reasons=(UNKNOWN_CERTIFICATE,),
                error=exc,
                **base,
            )
        except Exception as exc:
            return error_verdict(exc, base)
        token = record.token
    try:
        cert = _verify(client, token.strip(), jwks, issuer)
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
        return error_verdict(exc, base, record=record)
    claims = cert.claims
    base.update(
        cert_id=base.get("cert_id") or claims.jti,
        standard=claims.compliance_standard,
        standards_met=tuple(claims.standards_met),
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
        certified_version=claims.target.version if claims.target else None,
        certificate=cert,
    )
    wanted = cert_id if cert_id is not None else base.get("cert_id")
    if wanted is not None and claims.jti != wanted:
        base.pop("certificate")
        return Verdict(
            status="invalid",
            detail=f"the authority returned certificate {claims.jti}, not {wanted}",
            reasons=(JTI_MISMATCH,),
            record=record,
            **base,
        )
    if record is None and online and client is not None:
        try:
            record = client.get_certificate(claims.jti)
        except Exception as exc:
            return error_verdict(exc, base)
    if record is not None:
        base.update(record=record, revocation_reason=record.revocation_reason)
        base.setdefault("cert_url", None)
        base["cert_url"] = base["cert_url"] or record.cert_url
        if record.cert_id != claims.jti or record.token.strip() != cert.token:
            return Verdict(
                status="invalid",
                detail=(
                    f"the authority's record {record.cert_id} does not match "
                    f"certificate {claims.jti}"
                ),
                reasons=(RECORD_MISMATCH,),
                **base,
            )
    return Checked(cert=cert, record=record, facts=base)


def revocation_and_expiry(
    checked: Checked, status_list: StatusList | None, at: datetime
) -> list[Finding]:
    """Revoked (by the record or a verified status list) and expired findings."""
    cert, record = checked.cert, checked.record
    found: list[Finding] = []
    if record is not None and record.status == "revoked":
        when = iso(record.revoked_at) or "an unknown time"
        reason = record.revocation_reason or "no reason given"
        found.append((REVOKED, "revoked", f"revoked at {when}: {reason}"))
    elif status_list is not None:
        try:
            check_revocation(cert, status_list)
        except CertificateRevoked as exc:
            found.append((REVOKED, "revoked", exc.message))
        except InvalidRequest as exc:
            found.append((STATUS_LIST_MISMATCH, "error", exc.message))
    expired_by_record = record is not None and record.status == "expired"
    if expired_by_record or at >= cert.claims.expires_at:
        found.append((EXPIRED, "expired", f"expired at {iso(cert.claims.expires_at)}"))
    return found


def asked_and_expiring(
    claims: CertificateClaims, asked: Asked, found: list[Finding], at: datetime
) -> list[Finding]:
    """What the caller asked for, and expiring soon (unless already expired)."""
    out: list[Finding] = []
    if asked.require is not None and not claims.meets(asked.require):
        met = ", ".join(claims.standards_met) or "no standard"
        out.append((STANDARD_NOT_MET, "below_requirement", f"meets {met}, not {asked.require}"))
    if asked.preset is not None and not claims.certified_for(asked.preset):
        out.append(
            (
                STANDARD_MISMATCH,
                "below_requirement",
                f"certified for {claims.compliance_standard}, not {asked.preset}",
            )
        )
    if asked.keeper is not None and keeper_of(claims.label) != asked.keeper:
        out.append(
            (
                KEEPER_MISMATCH,
                "below_requirement",
                f"certified for keeper {keeper_of(claims.label)!r}, not {asked.keeper!r}",
            )
        )
    if not any(reason == EXPIRED for reason, _, _ in found):
        left = claims.expires_at - at
        if left <= timedelta(days=asked.expiring_days):
            out.append((EXPIRING, "expiring", f"expires in {max(0, left.days)} day(s)"))
    return out


def conclude(found: list[Finding], facts: dict[str, Any]) -> Verdict:
    """The verdict of a verified certificate: its most serious finding, or valid.

    A certificate of an embedded, throwaway authority is judged like any other;
    not a finding (it is what it says), but every report must say it: the detail
    carries :data:`~passgeni_core.model.EMBEDDED_ISSUER_NOTE`.
    """
    cert = facts.get("certificate")
    note = EMBEDDED_ISSUER_NOTE if cert is not None and cert.claims.embedded_issuer else ""
    if not found:
        return Verdict(status="valid", detail=note, **facts)
    worst = max(found, key=lambda f: STATUSES.index(f[1]))
    return Verdict(
        status=worst[1],
        detail=f"{worst[2]}; {note}" if note else worst[2],
        reasons=tuple(reason for reason, _, _ in found),
        **facts,
    )


def assess_certificate(
    client: AuthorityClient | None,
    *,
    token: str | None = None,
    cert_id: str | None = None,
    jwks: JWKS | None = None,
    issuer: str | None = None,
    online: bool = True,
    now: datetime | None = None,
    expiring_days: float = 30,
    require: str | None = None,
    preset: str | None = None,
    keeper: str | None = None,
    status_list: StatusList | None = None,
) -> Verdict:
    """The verdict on one certificate, given by ``token`` or by ``cert_id``.

    ``client`` is the authority asked for the record and (unless ``jwks`` pins
    the keys trusted) the JWKS; ``issuer`` is the issuer expected (default: the
    client's). With ``client=None`` the check is offline: ``token``, ``jwks`` and
    ``issuer`` are required and revocation is checked only against
    ``status_list``. ``online=False`` skips fetching the record of a token.

    The verdict's ``uri`` is the certificate's URL when the record gave it, else
    its id. Statuses and reasons are the judge's (see
    :mod:`passgeni_core.workflows`): never raises for a problem with the
    certificate, only for a call that cannot be judged at all (no token and no
    id, or offline without keys).
    """
    if token is None and cert_id is None:
        raise InvalidRequest("give a certificate token or a certificate id")
    if client is None and token is None:
        raise InvalidRequest(
            "a certificate id needs an authority to ask: give an id and an authority to ask, "
            "or the token"
        )
    if client is None and (jwks is None or issuer is None):
        raise InvalidRequest("offline verification needs the JWKS and the issuer to trust")
    at = aware_now(now)
    base: dict[str, Any] = {"uri": cert_id or ""}
    if cert_id is not None:
        base["cert_id"] = cert_id
    checked = fetch_and_verify(
        client,
        base,
        token=token,
        cert_id=cert_id,
        jwks=jwks,
        issuer=issuer,
        online=online,
    )
    if isinstance(checked, Verdict):
        return checked
    facts = checked.facts
    facts["uri"] = facts.get("cert_url") or checked.cert.claims.jti
    found = revocation_and_expiry(checked, status_list, at)
    asked = Asked(require=require, preset=preset, keeper=keeper, expiring_days=expiring_days)
    found += asked_and_expiring(checked.cert.claims, asked, found, at)
    return conclude(found, facts)
