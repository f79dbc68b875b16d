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
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._binding import Credential, verify_binding
from ._claims import Target
from ._client import AuthorityClient, IssuedCertificate
from ._entropy_source import EntropySource
from ._errors import AuthorityError, InvalidRequest, UnknownKey
from ._generator import GeneratedPassword, generate
from ._params import GenerationParameters
from ._presets import get_preset
from ._standards import check_preset
from ._verify import Certificate, verify_certificate

__all__ = ["ProvisionResult", "certify", "provision"]


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
    if claims.compliance_standard != preset_id:
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
    extra = sorted(set(claims.standards_met) - set(generated.standards_met))
    if extra:
        raise _mismatch(cid, f"standards not met by these parameters: {', '.join(extra)}")
    if preset_id not in claims.standards_met:
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
