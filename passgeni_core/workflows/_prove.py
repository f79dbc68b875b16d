"""Proving a stored credential: ``passgeni prove URI`` and :func:`prove_credential`.

The one judge (:func:`~passgeni_core.workflows.assess`) verifies the certificate
and re-derives the stored password from the seed stored beside it; a credential
is *proven* only when the certificate is good (valid or expiring) and the
generation proof held: the stored value is exactly the machine-generated one
the certificate is for. A certificate from before generation proofs is
reported as binding only (the value is the certified one; how it was made is
not provable), which is not a proof of generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..client import AuthorityClient
from ..crypto import JWKS
from ..stores import SecretStore, StoreURI
from ._assessment import assess
from ._verdict import NO_VALUE, Verdict

__all__ = ["GENERATION_NOT_PROVABLE", "Proof", "prove_credential"]

#: The certificate is good but binding only: it cannot prove how the value was made.
GENERATION_NOT_PROVABLE = "generation_not_provable"


@dataclass(frozen=True, kw_only=True)
class Proof:
    """The outcome of :func:`prove_credential`. Public facts only."""

    uri: str
    proven: bool
    #: ``proven``, or the first reason it is not (``provenance_mismatch``, ``binding_missing``,
    #: ``generation_not_provable``, ``revoked``... see :data:`~passgeni_core.workflows.REASONS`).
    reason: str
    detail: str
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        claims = self.verdict.claims
        return {
            "uri": self.uri,
            "proven": self.proven,
            "reason": self.reason,
            "detail": self.detail,
            "status": self.verdict.status,
            "proof": self.verdict.proof,
            "cert_id": self.verdict.cert_id,
            "cert_url": self.verdict.cert_url,
            "generation": claims.generation.to_dict() if claims and claims.generation else None,
            "reasons": list(self.verdict.reasons),
        }


def prove_credential(
    client: AuthorityClient,
    store: SecretStore,
    uri: StoreURI,
    *,
    jwks: JWKS | None = None,
) -> Proof:
    """Whether the credential at ``uri`` is exactly the certified, machine-generated one.

    Never raises for a problem with the credential or its certificate (those are
    the reasons of an unproven :class:`Proof`); store errors are raised.
    """
    stored = store.read(uri)
    if stored is None:
        verdict = Verdict(
            uri=str(uri),
            status="no_certificate",
            detail="nothing is stored there",
            reasons=(NO_VALUE,),
        )
    else:
        verdict = assess(client, store.system, stored, jwks=jwks)
    if verdict.ok and verdict.proof == "generation":
        generator = (
            verdict.claims.generation.generator
            if verdict.claims and verdict.claims.generation
            else "?"
        )
        detail = (
            f"the stored value is the password certificate {verdict.cert_id} was generated as "
            f"({generator}, re-derived from the stored seed)"
        )
        return Proof(uri=str(uri), proven=True, reason="proven", detail=detail, verdict=verdict)
    if verdict.ok and verdict.proof == "binding":
        return Proof(
            uri=str(uri),
            proven=False,
            reason=GENERATION_NOT_PROVABLE,
            detail=(
                f"binding only, generation not provable: certificate {verdict.cert_id} "
                "predates generation proofs; the value is the certified one"
            ),
            verdict=verdict,
        )
    reason = next(iter(verdict.reasons), verdict.status)
    return Proof(uri=str(uri), proven=False, reason=reason, detail=verdict.detail, verdict=verdict)
