"""The ``provenance`` claim and the one check of a FIPS 140-3 claim against its rule.

``fips_problem`` is what the client refuses a certificate for (workflows check_claims) and
what every reader reports: it must catch each way an authority could state more about FIPS
than its own written rule allows, and pass every honest combination.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, strategies as st

from passgeni_core import CertificateClaims, EntropySource, MalformedToken
from passgeni_core.model import (
    FIPS_RULES,
    LENIENT_RULE,
    STRICT_RULE,
    Provenance,
    decide_fips,
    fips_problem,
)

MET = ("NIST-800-63B", "SOC2", "FIPS-140-3")


def _provenance(rule: str, authority_fips: bool, client_fips: bool, listed: bool) -> Provenance:
    decision = decide_fips(
        rule, authority_fips_mode=authority_fips, declared=EntropySource(fips_mode=client_fips)
    )
    return Provenance.build(
        decision, EntropySource(api="secrets", fips_mode=authority_fips), fips_listed=listed
    )


@pytest.mark.parametrize(
    ("rule", "authority_fips", "client_fips"),
    list(itertools.product([STRICT_RULE, LENIENT_RULE], [True, False], [True, False])),
)
def test_every_honest_combination_passes_and_round_trips(
    rule: str, authority_fips: bool, client_fips: bool
) -> None:
    decision = decide_fips(
        rule, authority_fips_mode=authority_fips, declared=EntropySource(fips_mode=client_fips)
    )
    listed = decision.allowed
    provenance = _provenance(rule, authority_fips, client_fips, listed)
    met = MET if listed else MET[:2]
    assert fips_problem(provenance, met, {"fips_mode": client_fips}) == ""
    assert Provenance.from_dict(provenance.to_dict()) == provenance
    assert decision.allowed is (rule == LENIENT_RULE or (authority_fips and client_fips))


@pytest.mark.parametrize(
    ("rule", "authority_fips", "client_fips", "unverified", "declared", "message"),
    [
        # strict-v1 with a condition that did not hold, on either side.
        (STRICT_RULE, False, True, (), None, "host was not observed in FIPS mode"),
        (STRICT_RULE, True, False, (), None, "did not declare FIPS mode"),
        (STRICT_RULE, True, True, ("client_fips_mode",), None, "which has none"),
        # lenient-v1 hiding what it could not establish.
        (LENIENT_RULE, False, False, ("client_fips_mode",), None, "not authority_fips_mode"),
        (LENIENT_RULE, False, True, (), None, "records nothing"),
        # The client's declaration presented as the authority's observation.
        (LENIENT_RULE, True, True, (), ("target", "label"), "as observed"),
    ],
)
def test_a_fips_claim_beyond_its_rule_is_a_problem(
    rule: str,
    authority_fips: bool,
    client_fips: bool,
    unverified: tuple[str, ...],
    declared: tuple[str, ...] | None,
    message: str,
) -> None:
    lie = Provenance(
        fips_rule=rule,
        nonce_source={
            "api": "secrets",
            "kernel_source": "getrandom(2)",
            "fips_mode": authority_fips,
        },
        fips_unverified=unverified,
        **({} if declared is None else {"declared": declared}),
    )
    assert message in fips_problem(lie, MET, {"fips_mode": client_fips})


def test_an_unknown_rule_and_unrevalidated_parameters_are_problems() -> None:
    good = _provenance(STRICT_RULE, True, True, True).to_dict()
    unknown = Provenance.from_dict({**good, "fips_rule": "trust-me-v1"})
    assert "unknown here" in fips_problem(unknown, MET, {"fips_mode": True})
    lazy = Provenance.from_dict(
        {**good, "observed": {**good["observed"], "parameters_revalidated": False}}
    )
    assert "re-validated" in fips_problem(lazy, MET, {"fips_mode": True})


def test_certificates_from_before_the_claim_are_judged_only_on_a_fips_listing() -> None:
    assert fips_problem(None, MET[:2], {"fips_mode": False}) == ""
    assert fips_problem(None, MET, {"fips_mode": True}) == ""
    # The lie: FIPS 140-3 with no rule and not even a declaration of FIPS mode.
    assert "no stated rule" in fips_problem(None, MET, {"fips_mode": False})
    # Older certificates name standards by preset id: the same check.
    assert "no stated rule" in fips_problem(None, ("soc2", "fips-140-3"), {})


def test_the_claim_is_part_of_the_typed_payload() -> None:
    provenance = _provenance(LENIENT_RULE, False, False, True)
    claims = CertificateClaims.build(
        issuer="https://a.example",
        subject="u",
        cert_id="pg_x",
        compliance_standard="SOC2",
        standards_met=MET,
        entropy_bits=120.0,
        parameters={"length": 20},
        entropy_source=EntropySource().to_dict(),
        mapping_version="m",
        issued_at=datetime(2026, 12, 1, tzinfo=UTC),
        provenance=provenance,
    )
    payload = claims.to_payload()
    assert payload["provenance"] == {
        "observed": {
            "parameters_revalidated": True,
            "nonce_source": {"api": "secrets", "kernel_source": "getrandom(2)", "fips_mode": False},
        },
        "declared": ["entropy_source", "target", "label"],
        "fips_rule": "lenient-v1",
        "fips_unverified": ["authority_fips_mode", "client_fips_mode"],
    }
    parsed = CertificateClaims.from_payload(payload)
    assert parsed.provenance == provenance and "provenance" not in parsed.extra
    assert parsed.fips_problem() == ""
    assert set(FIPS_RULES) == {STRICT_RULE, LENIENT_RULE}


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5),
        st.dictionaries(
            st.sampled_from(["observed", "declared", "fips_rule", "fips_unverified"]),
            st.one_of(
                st.none(),
                st.booleans(),
                st.text(max_size=70),
                st.lists(st.text(max_size=70), max_size=3),
                st.dictionaries(
                    st.sampled_from(["parameters_revalidated", "nonce_source"]),
                    st.one_of(
                        st.booleans(),
                        st.text(max_size=5),
                        st.dictionaries(st.text(max_size=15), st.booleans() | st.text(max_size=70)),
                    ),
                ),
            ),
        ),
    )
)
def test_a_malformed_claim_is_malformed_token_never_another_error(data: Any) -> None:
    try:
        parsed = Provenance.from_dict(data)
    except MalformedToken:
        return
    assert parsed.to_dict()["fips_rule"] == data["fips_rule"]
