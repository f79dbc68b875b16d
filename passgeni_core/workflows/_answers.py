"""What a client checks of the authority's answers before accepting a certificate.

The authority is trusted to sign, not to describe: a session or certificate that
states other parameters, entropy, standards or generation than what was done
locally is refused (AuthorityError), so a buggy or hostile authority cannot hand
back evidence for a different credential.

What the authority says it observed cannot be checked from here (its own host's
FIPS mode), but it must be consistent: the client's ``entropy_source`` must
come back as sent and be labelled as declared, and FIPS 140-3 may be listed
only as the certificate's own FIPS rule allows
(:meth:`~passgeni_core.model.CertificateClaims.fips_problem`).
"""

from __future__ import annotations

import math

from .._errors import AuthorityError
from ..client import GenerationSession, IssuedCertificate
from ..crypto import Certificate
from ..model import GeneratedPassword, Generation, Target, preset_id_for

__all__ = ["check_claims", "check_session", "mismatch", "same_float"]


def mismatch(cert_id: str, what: str) -> AuthorityError:
    return AuthorityError(
        f"certificate {cert_id} does not state what was generated locally: {what}; "
        "it was not accepted"
    )


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def check_session(session: GenerationSession, generated: GeneratedPassword) -> None:
    # Checked before redeeming, so a disagreeing authority costs no certificate.
    if session.parameters and session.parameters != generated.parameters.to_dict():
        raise AuthorityError(
            "the authority's generation session states different parameters; not certified"
        )
    if not same_float(session.entropy_bits, generated.entropy.bits):
        raise AuthorityError(
            f"the authority computed {session.entropy_bits} bits of entropy, not "
            f"{generated.entropy.bits}; not certified"
        )


def check_claims(
    verified: Certificate,
    issued: IssuedCertificate,
    generated: GeneratedPassword,
    preset_id: str,
    target: Target | None,
    label: str | None,
    generation: Generation,
) -> None:
    """The certificate states exactly what was generated here, or AuthorityError says what not."""
    claims = verified.claims
    cid = issued.cert_id
    if claims.jti != issued.cert_id:
        raise mismatch(cid, f"the token's id is {claims.jti!r}")
    # Standards are compared by preset: new certificates name them by claim id
    # (SOC2), an older authority's by preset id (soc2).
    if not claims.certified_for(preset_id):
        raise mismatch(cid, f"compliance standard {claims.compliance_standard!r}")
    if claims.parameters != generated.parameters.to_dict():
        raise mismatch(cid, "different generation parameters")
    if not same_float(claims.entropy_bits, generated.entropy.bits):
        raise mismatch(cid, f"entropy {claims.entropy_bits} bits, not {generated.entropy.bits}")
    if claims.naive_entropy_bits is not None and not same_float(
        claims.naive_entropy_bits, generated.entropy.naive_bits
    ):
        raise mismatch(cid, f"naive entropy {claims.naive_entropy_bits} bits")
    if claims.entropy_source != generated.entropy_source.to_dict():
        raise mismatch(cid, "a different entropy source")
    # A served authority may be stricter (FIPS 140-3 only with a FIPS host), so it
    # may claim fewer standards than computed here, never more, and always the preset.
    computed = {preset_id_for(s) for s in generated.standards_met}
    extra = sorted(s for s in claims.standards_met if preset_id_for(s) not in computed)
    if extra:
        raise mismatch(cid, f"standards not met by these parameters: {', '.join(extra)}")
    if not claims.meets(preset_id):
        raise mismatch(cid, f"it does not list {preset_id} among the standards met")
    problem = claims.fips_problem()
    if problem:
        raise mismatch(cid, problem)
    if claims.generation != generation or claims.credential_commitment is not None:
        raise mismatch(cid, "a different generation proof (seed commitment or nonce)")
    if target is not None and claims.target != target:
        raise mismatch(cid, "a different target")
    if label is not None and claims.label != label:
        raise mismatch(cid, "a different label")
    if (
        tuple(issued.standards_met) != tuple(claims.standards_met)
        or not same_float(issued.entropy_bits, claims.entropy_bits)
        or issued.compliance_standard != claims.compliance_standard
    ):
        raise mismatch(cid, "the response and its signed token disagree")
