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
    the certificate names another location (or another store: Vault address or
    namespace, when the certificate records them), the proof fails (the stored seed
    does not re-derive the value, or an older certificate's binding check fails;
    seed or binding key missing), or the metadata names another certificate
    than the value (a provisioning stopped half-way: re-run it).
``below_requirement``
    valid, but not what the caller asked for: ``standards_met`` lacks
    ``require``, or another ``preset`` or ``keeper`` than the one given.
``expiring``
    valid, and expires within ``expiring_days`` days (still meets requirements).
``valid``
    certified, bound, current, not revoked, not expiring soon.

Every status but ``valid`` and ``expiring`` falls short (:data:`FAILING`).
A certificate of an embedded, throwaway authority (an ``embedded:`` issuer)
is judged like any other, and its verdict's ``detail`` says what it is
(:data:`~passgeni_core.model.EMBEDDED_ISSUER_NOTE`).
A verdict also lists every finding as a machine-readable reason
(:data:`REASONS`), so that a caller can tell, say, metadata that merely lags
behind a good value (repair it) from a changed value (rotate it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._errors import BindingMismatch, ProvenanceMismatch
from ..client import AuthorityClient, CertificateRecord
from ..crypto import JWKS, Certificate, StatusList, aware_now, verify_credential
from ..model import Target
from ..stores import CertificateRefs, StoredCredential
from ._certificate import (
    Asked,
    asked_and_expiring,
    conclude,
    fetch_and_verify,
    revocation_and_expiry,
)
from ._verdict import (
    BINDING_MISMATCH,
    BINDING_MISSING,
    METADATA_LAGGING,
    NO_REFERENCES,
    NO_VALUE,
    PROVENANCE_MISMATCH,
    TARGET_MISMATCH,
    VALUE_REPLACED,
    VERSION_MISMATCH,
    Finding,
    Verdict,
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
    fetched: CertificateRecord | Exception | None = None,
) -> Verdict:
    """The verdict on one stored credential (see the module docstring).

    ``system`` is the store's ``target.system`` (its scheme). ``jwks`` pins
    the keys trusted (default: the client's, fetched once and cached,
    refreshed once on an unknown key). ``require`` (a preset id whose
    standard must be met), ``preset`` (the preset it must be certified for)
    and ``keeper`` (the rotation epoch it must carry; ``None``: any) are
    what the caller asks for. ``status_list`` (a verified
    :class:`~passgeni_core.crypto.StatusList`) is checked for revocation
    besides the authority's record. ``fetched`` is what the authority already
    answered for the certificate the store names (its record, or the error, e.g.
    from :meth:`~passgeni_core.client.AuthorityClient.get_certificates`): judged
    exactly as the answer it would give here, without asking again.

    Never raises for a problem with the credential or its certificate: those
    are statuses.
    """
    at = aware_now(now)
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
    checked = fetch_and_verify(client, base, cert_id=refs.cert_id, jwks=jwks, fetched=fetched)
    if isinstance(checked, Verdict):
        return checked
    cert, facts = checked.cert, checked.facts
    claims = cert.claims
    facts["refs"] = CertificateRefs(
        cert_id=refs.cert_id,
        cert_url=refs.cert_url,
        standard=claims.compliance_standard,
        expires_at=claims.expires_at,
        version=stored.version,
    )
    found = revocation_and_expiry(checked, status_list, at)
    found += _drift(system, stored, refs, claims.target)
    proof_found, facts["proof"] = _binding(cert, stored)
    found += proof_found
    asked = Asked(require=require, preset=preset, keeper=keeper, expiring_days=expiring_days)
    found += asked_and_expiring(claims, asked, found, at)
    return conclude(found, facts)


def _drift(
    system: str, stored: StoredCredential, refs: CertificateRefs, target: Target | None
) -> list[Finding]:
    found: list[Finding] = []
    elsewhere = (
        None if target is None or stored.scope is None else stored.scope.differs_from(target)
    )
    if target is not None:
        if target.system != system or target.path != stored.uri.target_path:
            found.append(
                (
                    TARGET_MISMATCH,
                    "drifted",
                    f"certified for {target.system}:{target.path}, found at {stored.uri}",
                )
            )
        elif elsewhere is not None:
            found.append((TARGET_MISMATCH, "drifted", f"{stored.uri}: {elsewhere}"))
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


def _binding(cert: Certificate, stored: StoredCredential) -> tuple[list[Finding], str | None]:
    """The proof findings, and which proof held (``generation``, ``binding`` or None)."""
    credential = stored.credential
    proves_generation = cert.claims.generation is not None
    if credential is None or (proves_generation and credential.seed is None):
        what = "no generation seed" if proves_generation else "no binding key"
        return [(BINDING_MISSING, "drifted", f"{what} is stored beside the password")], None
    try:
        return [], verify_credential(cert, credential)
    except ProvenanceMismatch as exc:
        return [(PROVENANCE_MISMATCH, "drifted", exc.message)], None
    except BindingMismatch:
        return [
            (
                BINDING_MISMATCH,
                "drifted",
                "the binding check fails: the value changed after certification",
            )
        ], None
