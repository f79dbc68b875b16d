"""Who vouches for what in a certificate: what the authority observed, what the client declared.

A certificate's ``provenance`` claim (cert_version "2.0", added in mapping
2026.12-1; certificates issued before carry none) separates the two:

``observed``
    facts the authority established itself: it re-validated the parameters
    (and recomputed ``entropy_bits``, ``standards_met``), drew its own nonce
    (``generation.nonce``) from ``nonce_source``, whose ``fips_mode`` it read
    from its own host's kernel flag. Every claim not listed in ``declared`` is
    the authority's own (``iss``, ``iat``/``nbf``/``exp``, ``jti``, ...).
``declared``
    the claims taken on the client's word: ``entropy_source`` (the RNG its seed
    came from, its ``fips_mode``), ``target`` and ``label`` (where it says it
    stored the credential).
``fips_rule``
    the written rule under which ``FIPS-140-3`` is (or is not) listed in
    ``standards_met`` (:data:`FIPS_RULES`); under ``lenient-v1``
    ``fips_unverified`` names the conditions of ``strict-v1`` that did not
    hold for a certificate that lists FIPS 140-3 anyway.

:func:`fips_problem` is the one check that a certificate's FIPS 140-3 claim is
what its own rule allows: the client refuses a certificate that fails it, and
every reader reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import MalformedToken
from ._entropy_source import EntropySource
from ._presets import same_standard

__all__ = [
    "DECLARED_CLAIMS",
    "FIPS_CONDITIONS",
    "FIPS_RULES",
    "LENIENT_RULE",
    "STRICT_RULE",
    "FipsDecision",
    "Provenance",
    "decide_fips",
    "fips_problem",
]

FIPS_STANDARD = "fips-140-3"
STRICT_RULE = "strict-v1"
LENIENT_RULE = "lenient-v1"

#: The written FIPS rules, quoted by every surface that shows a certificate.
FIPS_RULES: dict[str, str] = {
    STRICT_RULE: (
        "FIPS 140-3 is listed only when the parameters meet the FIPS 140-3 profile, the "
        "authority drew its nonce from its CSPRNG on a host it observed in FIPS mode (its "
        "kernel's FIPS flag), and the client declared that it drew its seed in FIPS mode. "
        "The client's FIPS mode is its declaration: the authority cannot observe another "
        "machine."
    ),
    LENIENT_RULE: (
        "FIPS 140-3 is listed when the parameters meet the FIPS 140-3 profile; the "
        "conditions of strict-v1 that did not hold are recorded in fips_unverified, and "
        "the certificate is no evidence of a FIPS-mode entropy source for them."
    ),
}

#: The conditions of ``strict-v1``, by the name ``fips_unverified`` records them under.
FIPS_CONDITIONS: dict[str, str] = {
    "authority_fips_mode": "the authority's host was not observed in FIPS mode",
    "client_fips_mode": "the client did not declare FIPS mode",
}

#: The claims an authority takes on the client's word (when present).
DECLARED_CLAIMS: tuple[str, ...] = ("entropy_source", "target", "label")


@dataclass(frozen=True)
class FipsDecision:
    """Whether FIPS 140-3 may be listed under ``rule``, and what ``fips_unverified`` records."""

    rule: str
    allowed: bool
    #: The strict-v1 conditions that did not hold (see :data:`FIPS_CONDITIONS`).
    unmet: tuple[str, ...]

    def refusal(self) -> str:
        """Why the rule refuses FIPS 140-3 (for a ``preset_not_met`` message)."""
        return (
            f"FIPS 140-3 under rule {self.rule} needs a FIPS-mode authority and a client "
            "declaring FIPS mode: " + "; ".join(FIPS_CONDITIONS[c] for c in self.unmet)
        )


def decide_fips(rule: str, *, authority_fips_mode: bool, declared: EntropySource) -> FipsDecision:
    """Apply ``rule`` to what the authority observed of itself and what the client declared."""
    if rule not in FIPS_RULES:
        raise ValueError(f"unknown FIPS rule {rule!r}")
    unmet = tuple(
        name
        for name, held in (
            ("authority_fips_mode", authority_fips_mode),
            ("client_fips_mode", declared.fips_mode),
        )
        if not held
    )
    return FipsDecision(rule=rule, allowed=rule == LENIENT_RULE or not unmet, unmet=unmet)


def _nonce_source(data: object) -> dict[str, Any]:
    # Types only: a reader accepts a source a newer authority may name (the
    # authority that signs builds it from the enumerated schema).
    if (
        not isinstance(data, dict)
        or set(data) != {"api", "kernel_source", "fips_mode"}
        or not isinstance(data["fips_mode"], bool)
        or not all(
            isinstance(data[k], str) and 0 < len(data[k]) <= 64 for k in ("api", "kernel_source")
        )
    ):
        raise MalformedToken("certificate claim 'provenance.observed.nonce_source' is malformed")
    return dict(data)


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """The ``provenance`` claim (see the module docstring)."""

    fips_rule: str
    #: The authority's own nonce source: ``{"api", "kernel_source", "fips_mode"}``.
    nonce_source: Mapping[str, Any]
    parameters_revalidated: bool = True
    declared: tuple[str, ...] = DECLARED_CLAIMS
    fips_unverified: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, decision: FipsDecision, nonce_source: EntropySource, *, fips_listed: bool
    ) -> Provenance:
        """The claim of a certificate the authority is about to sign."""
        return cls(
            fips_rule=decision.rule,
            nonce_source={
                "api": nonce_source.api,
                "kernel_source": nonce_source.kernel_source,
                "fips_mode": nonce_source.fips_mode,
            },
            fips_unverified=decision.unmet if fips_listed and decision.rule == LENIENT_RULE else (),
        )

    @property
    def authority_fips_mode(self) -> bool:
        return self.nonce_source.get("fips_mode") is True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "observed": {
                "parameters_revalidated": self.parameters_revalidated,
                "nonce_source": dict(self.nonce_source),
            },
            "declared": list(self.declared),
            "fips_rule": self.fips_rule,
        }
        if self.fips_unverified:
            out["fips_unverified"] = list(self.fips_unverified)
        return out

    @classmethod
    def from_dict(cls, data: object) -> Provenance:
        """Parse the claim of a verified certificate.

        Raises:
            MalformedToken: not the documented shape. A rule this reader does not
                know is kept (shown by name); :func:`fips_problem` reports it.
        """
        if not isinstance(data, dict):
            raise MalformedToken("certificate claim 'provenance' must be an object")
        observed, declared = data.get("observed"), data.get("declared")
        rule, unverified = data.get("fips_rule"), data.get("fips_unverified", [])
        if not isinstance(observed, dict) or not isinstance(
            observed.get("parameters_revalidated"), bool
        ):
            raise MalformedToken("certificate claim 'provenance.observed' is malformed")
        for name, value in (("declared", declared), ("fips_unverified", unverified)):
            if not isinstance(value, list) or not all(
                isinstance(v, str) and 0 < len(v) <= 64 for v in value
            ):
                raise MalformedToken(f"certificate claim 'provenance.{name}' is malformed")
        if not isinstance(rule, str) or not 0 < len(rule) <= 64:
            raise MalformedToken("certificate claim 'provenance.fips_rule' is malformed")
        assert isinstance(declared, list) and isinstance(unverified, list)
        return cls(
            fips_rule=rule,
            nonce_source=_nonce_source(observed.get("nonce_source")),
            parameters_revalidated=observed["parameters_revalidated"],
            declared=tuple(declared),
            fips_unverified=tuple(unverified),
        )


def fips_problem(
    provenance: Provenance | None,
    standards_met: tuple[str, ...] | list[str],
    entropy_source: Mapping[str, Any],
) -> str:
    """Why a certificate says more about FIPS or its sources than its own rule allows ('' if not).

    Checked by the client before it accepts a certificate, and reported by
    every reader. A certificate without ``provenance`` (issued before it) is
    judged only if it lists FIPS 140-3: it must then at least have had the
    client's declaration of FIPS mode.
    """
    listed = any(same_standard(s, FIPS_STANDARD) for s in standards_met)
    client_fips = entropy_source.get("fips_mode") is True
    if provenance is None:
        if listed and not client_fips:
            return "it lists FIPS 140-3 under no stated rule, without a FIPS-mode declaration"
        return ""
    if provenance.fips_rule not in FIPS_RULES:
        return f"it lists standards under FIPS rule {provenance.fips_rule!r}, unknown here"
    if not provenance.parameters_revalidated:
        return "the authority does not state that it re-validated the parameters"
    if "entropy_source" not in provenance.declared:
        return "it presents the client's entropy_source as observed by the authority"
    unmet = tuple(
        name
        for name, held in (
            ("authority_fips_mode", provenance.authority_fips_mode),
            ("client_fips_mode", client_fips),
        )
        if not held
    )
    if provenance.fips_rule == STRICT_RULE:
        if listed and unmet:
            return f"it lists FIPS 140-3 under {STRICT_RULE} although " + "; ".join(
                FIPS_CONDITIONS[c] for c in unmet
            )
        if provenance.fips_unverified:
            return f"it records fips_unverified under {STRICT_RULE}, which has none"
        return ""
    expected = unmet if listed else ()
    if tuple(sorted(provenance.fips_unverified)) != tuple(sorted(expected)):
        return (
            f"fips_unverified under {LENIENT_RULE} records "
            f"{', '.join(provenance.fips_unverified) or 'nothing'}, not "
            f"{', '.join(expected) or 'nothing'}"
        )
    return ""
