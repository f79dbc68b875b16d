"""Provisioning: generate a password locally and have an authority certify it.

The flow keeps the password on this machine and proves it was generated::

    seed = 32 bytes of the OS CSPRNG     (stored beside the password, never sent)
    POST /api/generate             (public parameters + the seed's commitment)
        <- session, authority nonce
    password = passgeni-shake256-v1(seed, nonce, parameters)
    POST /api/generate-certificate (session id, target, label only)
    verify the returned token offline against the authority's JWKS, check that
    it states exactly what was generated, and re-derive the password from it

The authority is trusted to sign, not to describe: a certificate that claims
other parameters, entropy, standards or generation than what was done here is
rejected, so a buggy or hostile authority cannot hand back evidence for a
different credential. A password chosen by a person cannot be certified: it
would have to be the derivation of a seed committed before the nonce was known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import AuthorityError, PassgeniError, UnknownKey
from ..client import AuthorityClient, CertificateRequest, GenerationSession, IssuedCertificate
from ..crypto import (
    Certificate,
    Credential,
    decode_nonce,
    seed_commitment,
    verify_certificate,
    verify_provenance,
)
from ..model import (
    GENERATOR_ID,
    EntropySource,
    GeneratedPassword,
    Generation,
    GenerationParameters,
    Target,
    check_preset,
    derive,
    get_preset,
    new_seed,
)
from ._answers import check_claims, check_session

__all__ = [
    "CertifyRequest",
    "PendingCertificate",
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
    """A certified credential: the password and its seed, plus its verified certificate.

    ``repr``/``str`` show the certificate id and facts, never the password or
    seed. Store ``credential`` (both halves) in the secrets manager and
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
        """Everything but the password and the seed (safe to print or log)."""
        claims = self.verified.claims
        return {
            **self.certificate.to_dict(),
            "kid": self.verified.kid,
            "issuer": claims.iss,
            "parameters": claims.parameters,
            "entropy_source": claims.entropy_source,
            "naive_entropy_bits": claims.naive_entropy_bits,
            "generation": claims.generation.to_dict() if claims.generation else None,
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
        ProvenanceMismatch: the certificate's generation proof does not re-derive
            the password generated here.
        InvalidToken (and subclasses): the returned token does not verify
            against the authority's JWKS.
    """
    params = _resolve_parameters(preset, parameters)
    check_preset(preset, params, entropy_source=entropy_source)
    return certify(
        client, params, preset=preset, target=target, label=label, entropy_source=entropy_source
    )


def _target(target: Target | Mapping[str, Any] | None) -> Target | None:
    if target is None or isinstance(target, Target):
        return target
    return Target.from_dict(dict(target))


def certify(
    client: AuthorityClient,
    parameters: GenerationParameters,
    *,
    preset: str,
    target: Target | Mapping[str, Any] | None = None,
    label: str | None = None,
    entropy_source: EntropySource | None = None,
) -> ProvisionResult:
    """Generate a password for ``parameters`` by the certified flow and certify it.

    Raises:
        InvalidRequest: a malformed target or label.
        The other errors of :func:`provision`.
    """
    request = CertifyRequest(
        parameters=parameters,
        preset=get_preset(preset).id,
        entropy_source=entropy_source,
        target=_target(target),
        label=label,
    )
    seed = new_seed()
    session = client.start_generation(
        request.preset,
        parameters,
        entropy_source=entropy_source,
        seed_commitment=seed_commitment(seed),
    )
    generated = _derived(session, request, seed)
    issued = client.issue_certificate(session, target=request.target, label=label)
    pending = PendingCertificate(
        request=request,
        seed=seed,
        nonce=session.authority_nonce or "",
        generated=generated,
        issued=issued,
    )
    return _accepted(client, pending)


@dataclass(frozen=True, repr=False, eq=False)
class CertifyRequest:
    """One credential to generate and certify (:func:`issue_many`): what, and where it goes."""

    parameters: GenerationParameters
    preset: str
    entropy_source: EntropySource | None = None
    target: Target | None = None
    label: str | None = None

    def __repr__(self) -> str:
        return f"CertifyRequest(preset={self.preset!r}, target={self.target!r})"


@dataclass(frozen=True, repr=False, eq=False)
class PendingCertificate:
    """A certificate :func:`issue_many` obtained, not yet accepted (:func:`accept_issued`).

    Holds the password generated for it and its seed: ``repr`` shows neither.
    """

    request: CertifyRequest
    seed: bytes
    nonce: str
    generated: GeneratedPassword
    issued: IssuedCertificate

    @property
    def cert_id(self) -> str:
        return self.issued.cert_id

    def __repr__(self) -> str:
        return f"PendingCertificate(cert_id={self.cert_id!r}, request={self.request!r})"


def _derived(session: GenerationSession, request: CertifyRequest, seed: bytes) -> GeneratedPassword:
    """The password the session's nonce and ``seed`` derive, checked against the session."""
    if session.generator != GENERATOR_ID or not session.authority_nonce:
        raise AuthorityError(
            f"the authority's session names generator {session.generator!r} and "
            f"{'a' if session.authority_nonce else 'no'} nonce; this client generates with "
            f"{GENERATOR_ID} (upgrade the authority); not certified"
        )
    try:
        nonce = decode_nonce(session.authority_nonce)
    except PassgeniError:
        raise AuthorityError("the authority's nonce is malformed; not certified") from None
    generated = derive(request.parameters, seed, nonce, entropy_source=request.entropy_source)
    check_session(session, generated)
    return generated


def _as_error(exc: Exception) -> PassgeniError:
    if isinstance(exc, PassgeniError):
        return exc
    text = " ".join(str(exc).split())[:200]
    return AuthorityError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def certify_many(
    client: AuthorityClient, items: Sequence[CertifyRequest]
) -> list[ProvisionResult | PassgeniError]:
    """Generate and certify many credentials in a few requests (bulk rotation).

    :func:`issue_many` then :func:`accept_issued` for each certificate.
    Returns one entry per item, in order: the result, or the error for that
    item (never raised: one failure must not hide the others).
    """
    out: list[ProvisionResult | PassgeniError] = []
    for pending in issue_many(client, items):
        if isinstance(pending, PassgeniError):
            out.append(pending)
            continue
        try:
            out.append(accept_issued(client, pending))
        except PassgeniError as exc:
            out.append(exc)
    return out


def issue_many(
    client: AuthorityClient, items: Sequence[CertifyRequest]
) -> list[PendingCertificate | PassgeniError]:
    """Generate and certify many credentials in a few requests; not yet accepted.

    One ``POST /api/generate-batch`` per distinct (preset, parameters, entropy
    source) with one seed commitment per item; each password is derived from
    its seed and its session's nonce and checked against the session; then one
    ``POST /api/generate-certificates`` for every item (split to the
    authority's size limits). Each certificate must then go through
    :func:`accept_issued` before its credential is used.

    Returns one entry per item, in order: the pending certificate, or the
    error for that item (never raised).
    """
    out: list[PendingCertificate | PassgeniError | None] = [None] * len(items)
    seeds = [new_seed() for _ in items]
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, item in enumerate(items):
        try:
            preset_id = get_preset(item.preset).id
        except PassgeniError as exc:
            out[i] = exc
            continue
        source = item.entropy_source.to_dict() if item.entropy_source else None
        key = (
            preset_id,
            json.dumps(item.parameters.to_dict(), sort_keys=True),
            json.dumps(source, sort_keys=True),
        )
        groups.setdefault(key, []).append(i)

    # 1. sessions: one request per group (the authority validates the parameters once).
    redeem: list[tuple[int, str, GeneratedPassword, CertificateRequest]] = []
    for (preset_id, _, _), indexes in groups.items():
        first = items[indexes[0]]
        try:
            sessions = client.start_generations(
                preset_id,
                first.parameters,
                len(indexes),
                entropy_source=first.entropy_source,
                seed_commitments=[seed_commitment(seeds[i]) for i in indexes],
            )
        except Exception as exc:
            for i in indexes:
                out[i] = _as_error(exc)
            continue
        for i, session in zip(indexes, sessions, strict=True):
            item = items[i]
            try:
                generated = _derived(session, item, seeds[i])
            except PassgeniError as exc:
                out[i] = exc
                continue
            request = CertificateRequest(
                session_id=session.session_id, target=item.target, label=item.label
            )
            redeem.append((i, session.authority_nonce or "", generated, request))

    # 2. certificates: one request (or a few) for every session.
    if redeem:
        try:
            issued_all: list[IssuedCertificate | PassgeniError] = client.issue_certificates(
                [request for _, _, _, request in redeem]
            )
        except Exception as exc:
            issued_all = [_as_error(exc)] * len(redeem)
        for (i, nonce, generated, _), issued in zip(redeem, issued_all, strict=True):
            out[i] = (
                issued
                if isinstance(issued, PassgeniError)
                else PendingCertificate(
                    request=items[i],
                    seed=seeds[i],
                    nonce=nonce,
                    generated=generated,
                    issued=issued,
                )
            )
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def accept_issued(client: AuthorityClient, pending: PendingCertificate) -> ProvisionResult:
    """Verify a certificate from :func:`issue_many` exactly as :func:`certify` does.

    Raises:
        The verification errors of :func:`certify` (AuthorityError,
        ProvenanceMismatch, InvalidToken...); the certificate is then revoked
        (reason ``not stored``) first and the message says so.
    """
    try:
        return _accepted(client, pending)
    except Exception as exc:
        error = _as_error(exc)
        issued = pending.issued
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


def _accepted(client: AuthorityClient, pending: PendingCertificate) -> ProvisionResult:
    """The verified certificate, checked against what was generated, and re-derived."""
    request, issued, generated = pending.request, pending.issued, pending.generated
    verified = _verify_issued(client, issued)
    expected = Generation(
        generator=GENERATOR_ID, seed_commitment=seed_commitment(pending.seed), nonce=pending.nonce
    )
    check_claims(
        verified, issued, generated, request.preset, request.target, request.label, expected
    )
    # Re-deriving from the certificate alone is the check a store's reader will do.
    verify_provenance(verified, generated.password, pending.seed)
    return ProvisionResult(
        credential=Credential.generated(generated.password, pending.seed),
        generated=generated,
        certificate=issued,
        verified=verified,
    )


def _verify_issued(client: AuthorityClient, issued: IssuedCertificate) -> Certificate:
    try:
        return verify_certificate(issued.token, client.jwks(), issuer=client.issuer)
    except UnknownKey:
        # A key rotated since the JWKS was cached: fetch it once more.
        return verify_certificate(issued.token, client.jwks(refresh=True), issuer=client.issuer)
