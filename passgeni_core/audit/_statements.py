"""Who vouches for what in a certificate, in words: the one wording every report uses.

``passgeni verify``, the evidence bundle's verdicts and the provenance record
all say the same thing about a certificate's entropy source and FIPS 140-3
claim: what the client **declared** (its RNG, its FIPS mode), what the
authority **observed** (parameters re-validated, its own nonce's source, its
host's FIPS mode, the time and its own name), and the written FIPS rule the
certificate states. Certificates issued before the ``provenance`` claim say
only what they hold, and the statements say that too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import (
    FIPS_CONDITIONS,
    FIPS_RULES,
    CertificateClaims,
    EntropySource,
    same_standard,
)

__all__ = ["SourceStatements", "source_statements"]

_NOT_STATED = "not stated (the certificate predates the observed/declared claims)"


@dataclass(frozen=True, kw_only=True)
class SourceStatements:
    """Labelled statements about one certificate's randomness and FIPS 140-3 claim."""

    #: What the client declared about the RNG its seed came from.
    declared: str
    #: What the authority observed (its nonce source, host FIPS mode, re-validation).
    observed: str
    #: FIPS 140-3: listed or not, under which rule, and what did not hold.
    fips: str
    #: The rule's text, or ``""`` when the certificate states none (or an unknown one).
    rule_text: str
    #: Non-empty when the FIPS 140-3 claim goes beyond the certificate's own rule.
    problem: str

    def to_dict(self) -> dict[str, str | None]:
        return {
            "declared": self.declared,
            "observed": self.observed,
            "fips": self.fips,
            "fips_problem": self.problem or None,
        }


def _declared(claims: CertificateClaims) -> str:
    source = EntropySource.from_claim(claims.entropy_source)
    if source is None:
        # Free text from before the enumerated schema: shown, never as a fact.
        shown = ", ".join(f"{k}={str(v)[:60]!r}" for k, v in sorted(claims.entropy_source.items()))
        return f"declared by the client, free text outside the schema: {shown or 'nothing'}"
    return f"declared by the client: {source.describe()}"


def source_statements(claims: CertificateClaims) -> SourceStatements:
    """The statements for ``claims`` (a verified certificate's)."""
    provenance = claims.provenance
    listed = any(same_standard(s, "fips-140-3") for s in claims.standards_met)
    problem = claims.fips_problem()
    if provenance is None:
        observed = _NOT_STATED
        fips = ("listed" if listed else "not listed") + ", under no stated rule"
        rule_text = ""
    else:
        nonce = provenance.nonce_source
        host = "yes" if provenance.authority_fips_mode else "no"
        observed = (
            "observed by the authority: parameters re-validated"
            if provenance.parameters_revalidated
            else "observed by the authority: (parameters not stated as re-validated)"
        ) + (
            f"; its nonce from {nonce.get('api')} over {nonce.get('kernel_source')}, "
            f"its host in FIPS mode: {host}; issued by {claims.iss} at "
            f"{claims.issued_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
        fips = f"{'listed' if listed else 'not listed'} under rule {provenance.fips_rule}"
        if listed and provenance.fips_unverified:
            fips += "; not established: " + "; ".join(
                FIPS_CONDITIONS.get(c, c) for c in provenance.fips_unverified
            )
        rule_text = FIPS_RULES.get(provenance.fips_rule, "")
    return SourceStatements(
        declared=_declared(claims),
        observed=observed,
        fips=fips,
        rule_text=rule_text,
        problem=problem,
    )
