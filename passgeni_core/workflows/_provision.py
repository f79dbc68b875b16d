"""Provisioning: generate a password locally and have an authority certify it.

The flow keeps the password on this machine::

    generate locally  ->  Credential(password, binding key)
    POST /api/generate             (public parameters only)
    POST /api/generate-certificate (session id + HMAC commitment only)
    verify the returned token offline against the authority's JWKS and check
    that it states exactly what was generated

The authority is trusted to sign, not to describe: a certificate that claims
other parameters, entropy, standards or commitment than what was generated
here is rejected, so a buggy or hostile authority cannot hand back evidence
for a different credential.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import AuthorityError, InvalidRequest, PassgeniError, UnknownKey
from ..client import AuthorityClient, CertificateRequest, GenerationSession, IssuedCertificate
from ..crypto import Certificate, Credential, verify_binding, verify_certificate
from ..model import (
    EntropySource,
    GeneratedPassword,
    GenerationParameters,
    Target,
    check_preset,
    generate,
    get_preset,
    preset_id_for,
)

__all__ = [
    "CertifyRequest",
    "ProvisionResult",
    "accept_issued",
    "certify",
    "certify_many",
    "issue_many",
    "provision",
]

#: Revocation reason for a certificate issued in a batch but not accepted here
#: (the same reason the stores use for a certificate whose credential was never stored).
REVOKE_REASON_NOT_ACCEPTED = "not stored"


@dataclass(frozen=True, repr=False, eq=False)
class ProvisionResult:
    """A certified credential: the secret pair plus its verified certificate.

    ``repr``/``str`` show the certificate id and facts, never the password or
    binding key. Store ``credential`` (both halves) in the secrets manager and
    ``certificate.token`` or ``cert_url`` beside it.
    """

    credential: Credential
    generated: GeneratedPassword
    certificate: IssuedCertificate
    verified: Certificate

    @property
    def cert_id(self) -> str:
        return self.certificate.cert_id

    @property
    def cert_url(self) -> str:
        return self.certificate.cert_url

    @property
    def token(self) -> str:
        return self.certificate.token

    def __repr__(self) -> str:
        return (
            f"ProvisionResult(cert_id={self.cert_id!r}, credential={self.credential!r}, "
            f"standard={self.verified.claims.compliance_standard!r}, "
            f"entropy_bits={self.verified.claims.entropy_bits})"
        )

    __str__ = __repr__

    def public_dict(self) -> dict[str, Any]:
        """Everything but the password and the binding key (safe to print or log)."""
        claims = self.verified.claims
        return {
            **self.certificate.to_dict(),
            "kid": self.verified.kid,
            "issuer": claims.iss,
            "parameters": claims.parameters,
            "entropy_source": claims.entropy_source,
            "naive_entropy_bits": claims.naive_entropy_bits,
            "credential_commitment": claims.credential_commitment,
            "target": claims.target.to_dict() if claims.target else None,
            "label": claims.label,
        }


def _resolve_parameters(
    preset: str, parameters: GenerationParameters | Mapping[str, Any] | None
) -> GenerationParameters:
    if parameters is None:
        return GenerationParameters.for_preset(preset)
    if isinstance(parameters, GenerationParameters):
        return parameters
    return GenerationParameters.from_dict(dict(parameters))


def provision(
    client: AuthorityClient,
    preset: str,
    *,
    parameters: GenerationParameters | Mapping[str, Any] | None = None,
    target: Target | Mapping[str, Any] | None = None,
    label: str | None = None,
    entropy_source: EntropySource | None = None,
) -> ProvisionResult:
    """Generate a password for ``preset`` locally and certify it with the authority.

    ``parameters`` default to the preset's; ``entropy_source`` should come
    from :func:`detect_entropy_source` at the caller's edge. The preset is
    checked locally before any request, so a bad combination never costs a
    rate-limited generation attempt.

    Raises:
        UnknownPreset / PresetNotMet / InvalidParameters: bad preset or parameters.
        AuthorityError: the certificate does not state what was generated, or
            any error of :meth:`AuthorityClient.start_generation` /
            :meth:`AuthorityClient.issue_certificate` (AuthorityUnavailable,
            RateLimited, Unauthenticated, SessionExpired...).
        BindingMismatch: the certificate's commitment is not this credential's.
        InvalidToken (and subclasses): the returned token does not verify
            against the authority's JWKS.
    """
    params = _resolve_parameters(preset, parameters)
    check_preset(preset, params, entropy_source=entropy_source)
    generated = generate(params, entropy_source=entropy_source)
    credential = Credential.create(generated.password)
    return certify(client, generated, credential, preset=preset, target=target, label=label)


def _mismatch(cert_id: str, what: str) -> AuthorityError:
    return AuthorityError(
        f"certificate {cert_id} does not state what was generated locally: {what}; "
        "it was not accepted"
    )


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def certify(
    client: AuthorityClient,
    generated: GeneratedPassword,
    credential: Credential,
    *,
    preset: str,
    target: Target | Mapping[str, Any] | None = None,
    label: str | None = None,
) -> ProvisionResult:
    """Certify a password that was already generated (stores: certify, then write).

    ``credential`` must hold ``generated.password``; only its commitment is sent.

    Raises:
        InvalidRequest: ``credential`` does not hold the generated password, or a
            malformed target/label.
        The other errors of :func:`provision`.
    """
    if not hmac.compare_digest(
        credential.password.encode("utf-8"), generated.password.encode("utf-8")
    ):
        raise InvalidRequest("the credential does not hold the generated password")
    preset_id = get_preset(preset).id
    tgt = (
        None
        if target is None
        else target
        if isinstance(target, Target)
        else Target.from_dict(dict(target))
    )
    commitment = credential.commitment
    session = client.start_generation(
        preset_id, generated.parameters, entropy_source=generated.entropy_source
    )
    _check_session(session, generated)
    issued = client.issue_certificate(
        session, credential_commitment=commitment, target=tgt, label=label
    )
    verified = _verify_issued(client, issued)
    _check_claims(verified, issued, generated, preset_id, commitment, tgt, label)
    # Recomputing the HMAC from the secret pair is the check a store's reader will do.
    verify_binding(verified, credential.password, credential.binding_key)
    return ProvisionResult(
        credential=credential, generated=generated, certificate=issued, verified=verified
    )


@dataclass(frozen=True, repr=False, eq=False)
class CertifyRequest:
    """One item of :func:`certify_many`: a generated password and what to bind it to."""

    generated: GeneratedPassword
    credential: Credential
    preset: str
    target: Target | None = None
    label: str | None = None

    def __repr__(self) -> str:
        return f"CertifyRequest(preset={self.preset!r}, target={self.target!r})"


def _check_session(session: GenerationSession, generated: GeneratedPassword) -> None:
    # Checked before redeeming, so a disagreeing authority costs no certificate.
    if session.parameters and session.parameters != generated.parameters.to_dict():
        raise AuthorityError(
            "the authority's generation session states different parameters; not certified"
        )
    if not _same_float(session.entropy_bits, generated.entropy.bits):
        raise AuthorityError(
            f"the authority computed {session.entropy_bits} bits of entropy, not "
            f"{generated.entropy.bits}; not certified"
        )


def _as_error(exc: Exception) -> PassgeniError:
    if isinstance(exc, PassgeniError):
        return exc
    text = " ".join(str(exc).split())[:200]
    return AuthorityError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def certify_many(
    client: AuthorityClient, items: Sequence[CertifyRequest]
) -> list[ProvisionResult | PassgeniError]:
    """Certify many generated passwords in a few requests (bulk rotation).

    :func:`issue_many` then :func:`accept_issued` for each certificate.
    Returns one entry per item, in order: the result, or the error for that
    item (never raised: one failure must not hide the others).
    """
    out: list[ProvisionResult | PassgeniError] = []
    for item, issued in zip(items, issue_many(client, items), strict=True):
        if isinstance(issued, PassgeniError):
            out.append(issued)
            continue
        try:
            out.append(accept_issued(client, item, issued))
        except PassgeniError as exc:
            out.append(exc)
    return out


def issue_many(
    client: AuthorityClient, items: Sequence[CertifyRequest]
) -> list[IssuedCertificate | PassgeniError]:
    """The certificates for many generated passwords, in a few requests; not yet verified.

    One ``POST /api/generate-batch`` per distinct (preset, parameters,
    entropy source), each session checked against what was generated, then
    one ``POST /api/generate-certificates`` for every item (split to the
    authority's size limits). Only commitments are sent. Each certificate
    must then go through :func:`accept_issued` before its credential is used.

    Returns one entry per item, in order: the certificate, or the error for
    that item (never raised).
    """
    out: list[IssuedCertificate | PassgeniError | None] = [None] * len(items)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, item in enumerate(items):
        if not hmac.compare_digest(
            item.credential.password.encode("utf-8"), item.generated.password.encode("utf-8")
        ):
            out[i] = InvalidRequest("the credential does not hold the generated password")
            continue
        try:
            preset_id = get_preset(item.preset).id
        except PassgeniError as exc:
            out[i] = exc
            continue
        key = (
            preset_id,
            json.dumps(item.generated.parameters.to_dict(), sort_keys=True),
            json.dumps(item.generated.entropy_source.to_dict(), sort_keys=True),
        )
        groups.setdefault(key, []).append(i)

    # 1. sessions: one request per group (the authority validates the parameters once).
    redeem: list[tuple[int, CertificateRequest]] = []
    for (preset_id, _, _), indexes in groups.items():
        first = items[indexes[0]].generated
        try:
            sessions = client.start_generations(
                preset_id,
                first.parameters,
                len(indexes),
                entropy_source=first.entropy_source,
            )
        except Exception as exc:
            for i in indexes:
                out[i] = _as_error(exc)
            continue
        for i, session in zip(indexes, sessions, strict=True):
            item = items[i]
            try:
                _check_session(session, item.generated)
            except PassgeniError as exc:
                out[i] = exc
                continue
            redeem.append(
                (
                    i,
                    CertificateRequest(
                        session_id=session.session_id,
                        credential_commitment=item.credential.commitment,
                        target=item.target,
                        label=item.label,
                    ),
                )
            )

    # 2. certificates: one request (or a few) for every session.
    if redeem:
        try:
            issued_all: list[IssuedCertificate | PassgeniError] = client.issue_certificates(
                [request for _, request in redeem]
            )
        except Exception as exc:
            issued_all = [_as_error(exc)] * len(redeem)
        for (i, _), issued in zip(redeem, issued_all, strict=True):
            out[i] = issued
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def accept_issued(
    client: AuthorityClient, item: CertifyRequest, issued: IssuedCertificate
) -> ProvisionResult:
    """Verify a certificate from :func:`issue_many` exactly as :func:`certify` does.

    Raises:
        The verification errors of :func:`certify` (AuthorityError,
        BindingMismatch, InvalidToken...); the certificate is then revoked
        (reason ``not stored``) first and the message says so.
    """
    preset_id = get_preset(item.preset).id
    credential = item.credential
    try:
        verified = _verify_issued(client, issued)
        _check_claims(
            verified,
            issued,
            item.generated,
            preset_id,
            credential.commitment,
            item.target,
            item.label,
        )
        verify_binding(verified, credential.password, credential.binding_key)
    except Exception as exc:
        error = _as_error(exc)
        try:
            client.revoke(issued.cert_id, REVOKE_REASON_NOT_ACCEPTED)
            note = (
                f"certificate {issued.cert_id} was revoked (reason: {REVOKE_REASON_NOT_ACCEPTED})"
            )
        except Exception as revoke_exc:
            note = (
                f"certificate {issued.cert_id} could NOT be revoked "
                f"({_as_error(revoke_exc).message}); revoke it with `passgeni revoke "
                f"{issued.cert_id} --reason '{REVOKE_REASON_NOT_ACCEPTED}'`"
            )
        try:
            refused = type(error)(f"{error.message}; {note}")
        except TypeError:  # pragma: no cover - an exotic constructor
            refused = AuthorityError(f"{error.message}; {note}")
        raise refused from None
    return ProvisionResult(
        credential=credential, generated=item.generated, certificate=issued, verified=verified
    )


def _verify_issued(client: AuthorityClient, issued: IssuedCertificate) -> Certificate:
    try:
        return verify_certificate(issued.token, client.jwks(), issuer=client.issuer)
    except UnknownKey:
        # A key rotated since the JWKS was cached: fetch it once more.
        return verify_certificate(issued.token, client.jwks(refresh=True), issuer=client.issuer)


def _check_claims(
    verified: Certificate,
    issued: IssuedCertificate,
    generated: GeneratedPassword,
    preset_id: str,
    commitment: str,
    target: Target | None,
    label: str | None,
) -> None:
    claims = verified.claims
    cid = issued.cert_id
    if claims.jti != issued.cert_id:
        raise _mismatch(cid, f"the token's id is {claims.jti!r}")
    # Standards are compared by preset: new certificates name them by claim id
    # (SOC2), an older authority's by preset id (soc2).
    if not claims.certified_for(preset_id):
        raise _mismatch(cid, f"compliance standard {claims.compliance_standard!r}")
    if claims.parameters != generated.parameters.to_dict():
        raise _mismatch(cid, "different generation parameters")
    if not _same_float(claims.entropy_bits, generated.entropy.bits):
        raise _mismatch(cid, f"entropy {claims.entropy_bits} bits, not {generated.entropy.bits}")
    if claims.naive_entropy_bits is not None and not _same_float(
        claims.naive_entropy_bits, generated.entropy.naive_bits
    ):
        raise _mismatch(cid, f"naive entropy {claims.naive_entropy_bits} bits")
    if claims.entropy_source != generated.entropy_source.to_dict():
        raise _mismatch(cid, "a different entropy source")
    # A served authority may be stricter (FIPS 140-3 only with a FIPS host), so it
    # may claim fewer standards than computed here, never more, and always the preset.
    computed = {preset_id_for(s) for s in generated.standards_met}
    extra = sorted(s for s in claims.standards_met if preset_id_for(s) not in computed)
    if extra:
        raise _mismatch(cid, f"standards not met by these parameters: {', '.join(extra)}")
    if not claims.meets(preset_id):
        raise _mismatch(cid, f"it does not list {preset_id} among the standards met")
    if claims.credential_commitment != commitment:
        raise _mismatch(cid, "a different credential commitment")
    if target is not None and claims.target != target:
        raise _mismatch(cid, "a different target")
    if label is not None and claims.label != label:
        raise _mismatch(cid, "a different label")
    if (
        tuple(issued.standards_met) != tuple(claims.standards_met)
        or not _same_float(issued.entropy_bits, claims.entropy_bits)
        or issued.compliance_standard != claims.compliance_standard
    ):
        raise _mismatch(cid, "the response and its signed token disagree")
