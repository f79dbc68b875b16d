"""The generation model: parameters, presets, exact entropy, the generator, standards, claims.

The bottom layer above the error tree: pure data and arithmetic, no I/O
beyond reading the packaged preset table.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._params": (
        "MAX_LENGTH",
        "MIN_LENGTH",
        "CharacterPool",
        "GenerationParameters",
    ),
    "._presets": (
        "CLASS_NAMES",
        "LOOKALIKES",
        "MAPPING_VERSION",
        "EntropyFloor",
        "PoolMinimums",
        "Preset",
        "claim_id_for",
        "get_preset",
        "list_presets",
        "preset_id_for",
        "same_standard",
    ),
    "._entropy": (
        "EntropyReport",
        "count_compositions",
        "count_outputs",
        "entropy_report",
        "exact_entropy_bits",
    ),
    "._derive": (
        "GENERATOR_ID",
        "NONCE_BYTES",
        "SEED_BYTES",
        "XofStream",
        "canonical_parameters",
        "derive",
        "derive_password",
        "new_seed",
        "seed_digest",
    ),
    "._generator": (
        "GeneratedPassword",
        "Sampler",
        "generate",
        "generate_many",
        "generate_password",
    ),
    "._standards": (
        "check_preset",
        "standards_met",
    ),
    "._claims": (
        "CERT_LIFETIME",
        "CERT_VERSION",
        "EMBEDDED_ISSUER_NOTE",
        "EMBEDDED_ISSUER_PREFIX",
        "CertificateClaims",
        "Generation",
        "StatusReference",
        "Target",
        "is_embedded_issuer",
    ),
    "._breach": (
        "BreachCheck",
        "BreachList",
        "breach_list",
    ),
    "._entropy_source": (
        "ENTROPY_APIS",
        "FIPS_FLAG_PATH",
        "KERNEL_SOURCES",
        "EntropySource",
        "detect_entropy_source",
        "read_fips_flag",
    ),
    "._provenance": (
        "DECLARED_CLAIMS",
        "FIPS_CONDITIONS",
        "FIPS_RULES",
        "LENIENT_RULE",
        "STRICT_RULE",
        "FipsDecision",
        "Provenance",
        "decide_fips",
        "fips_problem",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._breach import (
        BreachCheck as BreachCheck,
        BreachList as BreachList,
        breach_list as breach_list,
    )
    from ._claims import (
        CERT_LIFETIME as CERT_LIFETIME,
        CERT_VERSION as CERT_VERSION,
        EMBEDDED_ISSUER_NOTE as EMBEDDED_ISSUER_NOTE,
        EMBEDDED_ISSUER_PREFIX as EMBEDDED_ISSUER_PREFIX,
        CertificateClaims as CertificateClaims,
        Generation as Generation,
        StatusReference as StatusReference,
        Target as Target,
        is_embedded_issuer as is_embedded_issuer,
    )
    from ._derive import (
        GENERATOR_ID as GENERATOR_ID,
        NONCE_BYTES as NONCE_BYTES,
        SEED_BYTES as SEED_BYTES,
        XofStream as XofStream,
        canonical_parameters as canonical_parameters,
        derive as derive,
        derive_password as derive_password,
        new_seed as new_seed,
        seed_digest as seed_digest,
    )
    from ._entropy import (
        EntropyReport as EntropyReport,
        count_compositions as count_compositions,
        count_outputs as count_outputs,
        entropy_report as entropy_report,
        exact_entropy_bits as exact_entropy_bits,
    )
    from ._entropy_source import (
        ENTROPY_APIS as ENTROPY_APIS,
        FIPS_FLAG_PATH as FIPS_FLAG_PATH,
        KERNEL_SOURCES as KERNEL_SOURCES,
        EntropySource as EntropySource,
        detect_entropy_source as detect_entropy_source,
        read_fips_flag as read_fips_flag,
    )
    from ._generator import (
        GeneratedPassword as GeneratedPassword,
        Sampler as Sampler,
        generate as generate,
        generate_many as generate_many,
        generate_password as generate_password,
    )
    from ._params import (
        MAX_LENGTH as MAX_LENGTH,
        MIN_LENGTH as MIN_LENGTH,
        CharacterPool as CharacterPool,
        GenerationParameters as GenerationParameters,
    )
    from ._presets import (
        CLASS_NAMES as CLASS_NAMES,
        LOOKALIKES as LOOKALIKES,
        MAPPING_VERSION as MAPPING_VERSION,
        EntropyFloor as EntropyFloor,
        PoolMinimums as PoolMinimums,
        Preset as Preset,
        claim_id_for as claim_id_for,
        get_preset as get_preset,
        list_presets as list_presets,
        preset_id_for as preset_id_for,
        same_standard as same_standard,
    )
    from ._provenance import (
        DECLARED_CLAIMS as DECLARED_CLAIMS,
        FIPS_CONDITIONS as FIPS_CONDITIONS,
        FIPS_RULES as FIPS_RULES,
        LENIENT_RULE as LENIENT_RULE,
        STRICT_RULE as STRICT_RULE,
        FipsDecision as FipsDecision,
        Provenance as Provenance,
        decide_fips as decide_fips,
        fips_problem as fips_problem,
    )
    from ._standards import check_preset as check_preset, standards_met as standards_met
