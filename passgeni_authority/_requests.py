"""Re-validating a generation request: what a certificate for it will state.

Nothing the client sends is taken as a fact: the parameters are parsed and
checked against the preset, the entropy and the standards met are recomputed,
and the client's ``entropy_source`` is parsed against the enumerated schema
and kept as what it is, a declaration. FIPS 140-3 is listed only as the
authority's written FIPS rule allows (``passgeni_core.model.decide_fips``), and
the answer carries the ``provenance`` claim that says so: what this authority
observed (its own nonce source and FIPS mode), what the client declared, and
the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from passgeni_core import (
    MAPPING_VERSION,
    EntropySource,
    GenerationParameters,
    InvalidRequest,
    PresetNotMet,
    check_preset,
    claim_id_for,
    entropy_report,
    get_preset,
    standards_met,
)
from passgeni_core.client import GenerateBody
from passgeni_core.model import Provenance, decide_fips

__all__ = ["validate_request"]

# The fields of the wire contract's request body (checked by hand below, with the core's
# messages; ``count`` of the batch body is taken out before).
_GENERATE_FIELDS = frozenset(GenerateBody.__struct_fields__)


def validate_request(
    body: Mapping[str, Any], *, fips_rule: str, nonce_source: EntropySource
) -> dict[str, Any]:
    """The re-validated request (what its sessions' certificates state).

    ``nonce_source`` is what the authority observed of its own randomness
    (``fips_mode`` read from its host's kernel flag).

    Raises:
        InvalidRequest: a password, an unknown field, no or two standards.
        InvalidParameters: bad parameters; ``invalid_entropy_source`` for a
            declaration outside the schema; ``preset_not_met`` when the
            parameters (or, for FIPS 140-3, the rule) do not meet the preset.
    """
    if "password" in body:
        raise InvalidRequest(
            "the authority never accepts a password: send only the generation parameters"
        )
    unknown = sorted(str(k)[:40] for k in body if k not in _GENERATE_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    standard = body.get("compliance_standard")
    alias = body.get("preset")
    if standard is not None and alias is not None and standard != alias:
        raise InvalidRequest("compliance_standard and preset differ; send one of them")
    standard = standard if standard is not None else alias
    if not isinstance(standard, str) or not standard:
        raise InvalidRequest("compliance_standard (or preset) is required")
    preset = get_preset(standard)
    raw_params = body.get("parameters")
    params = (
        GenerationParameters.for_preset(preset)
        if raw_params is None
        else GenerationParameters.from_dict(raw_params)
    )
    raw_source = body.get("entropy_source")
    source = EntropySource() if raw_source is None else EntropySource.from_dict(raw_source)
    fips = decide_fips(fips_rule, authority_fips_mode=nonce_source.fips_mode, declared=source)
    check_preset(preset, params, fips_ok=True)
    if preset.requires_fips_entropy and not fips.allowed:
        raise PresetNotMet(f"parameters do not meet preset {preset.id}: {fips.refusal()}")
    report = entropy_report(params)
    met = standards_met(params, fips_ok=fips.allowed)
    provenance = Provenance.build(
        fips, nonce_source, fips_listed=any(get_preset(p).requires_fips_entropy for p in met)
    )
    # Certificates name standards by claim id (the published recipe's
    # identifiers); requests name them by preset id or claim id.
    return {
        "compliance_standard": preset.claim_id,
        "parameters": params.to_dict(),
        "entropy_source": source.to_dict(),
        "standards_met": [claim_id_for(p) for p in met],
        "entropy_bits": report.bits,
        "naive_entropy_bits": report.naive_bits,
        "mapping_version": MAPPING_VERSION,
        # Observed and declared (a request stored before this claim has none:
        # its certificates carry no provenance, as before).
        "provenance": provenance.to_dict(),
    }
