"""PassGeni core: presets, an unbiased generator, exact entropy, certificate
claims and offline verification.

Pure library: no integrations, no web framework, no environment reads deep
inside. The most used names are re-exported here; the layers, top to bottom
(an import-linter contract keeps the order)::

    cli         the ``passgeni`` command line
    audit       coverage scans, registries, evidence bundles, policies
    workflows   certify, provision into a store, assess, rotate (one or many)
    stores      the public backend interface: protocol, codec, URI grammar, registry
    client      the authority's HTTP client and its configuration
    crypto      base64url/JWS, offline verification, status lists, binding
    model       parameters, presets, entropy, the generator, standards, claims
    errors      the one exception tree (re-exported here)

Each subpackage's ``__all__`` is its public API; modules starting with ``_``
are private.

Quick start::

    from passgeni_core import GenerationParameters, generate, verify_certificate

    params = GenerationParameters.for_preset("soc2")
    result = generate(params)
    result.password            # the secret: never logged, never sent anywhere
    result.entropy.bits        # exact entropy of the generator
    result.standards_met       # every standard these parameters meet

Imports are lazy (PEP 562, here and in every subpackage): ``import
passgeni_core`` costs almost nothing, and a name's module (and its
dependencies: pyjwt, cryptography, requests) loads on first use. That keeps
short-lived processes such as the Terraform external program fast. To export
a name, add it to ``_EXPORTS`` *and* to the ``TYPE_CHECKING`` imports below
(a test checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._untrusted": ("checked_text", "csv_cell", "loads_untrusted", "printable"),
    "._errors": (
        "AlgorithmNotAllowed",
        "AuthorityError",
        "AuthorityNotConfigured",
        "AuthorityUnavailable",
        "BadSignature",
        "BindingMismatch",
        "BreachedPassword",
        "CertificateExpired",
        "CertificateNotYetValid",
        "CertificateRevoked",
        "ConflictingParameters",
        "ForbiddenHeader",
        "InvalidParameters",
        "InvalidRequest",
        "InvalidStoreURI",
        "InvalidToken",
        "LengthOutOfRange",
        "MalformedToken",
        "NotFound",
        "PassgeniError",
        "PermissionDenied",
        "PresetNotMet",
        "ProvenanceMismatch",
        "RateLimited",
        "SeedCommitmentRequired",
        "SessionAlreadyUsed",
        "SessionExpired",
        "SessionInvalid",
        "StoreConflict",
        "StoreError",
        "StoreLimitExceeded",
        "StoreUnavailable",
        "Unauthenticated",
        "UnknownKey",
        "UnknownPreset",
        "UnknownStoreScheme",
        "UnsupportedCertVersion",
        "WrongIssuer",
        "error_for_code",
    ),
    ".audit": (
        "BundleReport",
        "CertificateVerdict",
        "CoverageReport",
        "ROTATION",
        "Registry",
        "RegistryEntry",
        "build_bundle",
        "build_registry",
        "render_policy",
        "scan",
        "verify_bundle",
    ),
    ".client": (
        "Anomaly",
        "AuditPage",
        "AuthorityClient",
        "CertificateRecord",
        "CertificateRequest",
        "ClientConfig",
        "GenerationSession",
        "IssuedCertificate",
        "connect",
        "resolve_config",
    ),
    ".crypto": (
        "ALGORITHM",
        "BINDING_KEY_BYTES",
        "Certificate",
        "Credential",
        "JWKS",
        "MAX_TOKEN_BYTES",
        "STATUS_INVALID",
        "STATUS_LIST_TYP",
        "STATUS_SUSPENDED",
        "STATUS_VALID",
        "StatusList",
        "check_revocation",
        "credential_commitment",
        "decode_binding_key",
        "decode_seed",
        "encode_binding_key",
        "encode_seed",
        "new_binding_key",
        "seed_commitment",
        "verify_binding",
        "verify_certificate",
        "verify_certificate_at_issuance",
        "verify_credential",
        "verify_provenance",
        "verify_status_list",
    ),
    ".model": (
        "BreachCheck",
        "BreachList",
        "CERT_LIFETIME",
        "CERT_VERSION",
        "CLASS_NAMES",
        "CertificateClaims",
        "EMBEDDED_ISSUER_NOTE",
        "CharacterPool",
        "EntropyFloor",
        "EntropyReport",
        "EntropySource",
        "GENERATOR_ID",
        "GeneratedPassword",
        "Generation",
        "GenerationParameters",
        "MAPPING_VERSION",
        "MAX_LENGTH",
        "MIN_LENGTH",
        "NONCE_BYTES",
        "PoolMinimums",
        "Preset",
        "StatusReference",
        "Target",
        "breach_list",
        "check_preset",
        "claim_id_for",
        "count_outputs",
        "derive",
        "derive_password",
        "detect_entropy_source",
        "entropy_report",
        "exact_entropy_bits",
        "generate",
        "generate_many",
        "generate_password",
        "get_preset",
        "is_embedded_issuer",
        "list_presets",
        "preset_id_for",
        "same_standard",
        "standards_met",
    ),
    ".stores": (
        "CertificateRefs",
        "STORE_ENTRY_POINT_GROUP",
        "SecretStore",
        "StoreURI",
        "StoredCredential",
        "WritePlan",
        "available_schemes",
        "open_store",
        "parse_store_uri",
        "register_store",
    ),
    ".workflows": (
        "CoverageEntry",
        "ProvisionResult",
        "StoreResult",
        "Verdict",
        "assess",
        "assess_certificate",
        "certify",
        "prove_credential",
        "provision",
        "provision_into_store",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, extra=("__version__",))


if TYPE_CHECKING:
    from ._errors import (
        AlgorithmNotAllowed as AlgorithmNotAllowed,
        AuthorityError as AuthorityError,
        AuthorityNotConfigured as AuthorityNotConfigured,
        AuthorityUnavailable as AuthorityUnavailable,
        BadSignature as BadSignature,
        BindingMismatch as BindingMismatch,
        BreachedPassword as BreachedPassword,
        CertificateExpired as CertificateExpired,
        CertificateNotYetValid as CertificateNotYetValid,
        CertificateRevoked as CertificateRevoked,
        ConflictingParameters as ConflictingParameters,
        ForbiddenHeader as ForbiddenHeader,
        InvalidParameters as InvalidParameters,
        InvalidRequest as InvalidRequest,
        InvalidStoreURI as InvalidStoreURI,
        InvalidToken as InvalidToken,
        LengthOutOfRange as LengthOutOfRange,
        MalformedToken as MalformedToken,
        NotFound as NotFound,
        PassgeniError as PassgeniError,
        PermissionDenied as PermissionDenied,
        PresetNotMet as PresetNotMet,
        ProvenanceMismatch as ProvenanceMismatch,
        RateLimited as RateLimited,
        SeedCommitmentRequired as SeedCommitmentRequired,
        SessionAlreadyUsed as SessionAlreadyUsed,
        SessionExpired as SessionExpired,
        SessionInvalid as SessionInvalid,
        StoreConflict as StoreConflict,
        StoreError as StoreError,
        StoreLimitExceeded as StoreLimitExceeded,
        StoreUnavailable as StoreUnavailable,
        Unauthenticated as Unauthenticated,
        UnknownKey as UnknownKey,
        UnknownPreset as UnknownPreset,
        UnknownStoreScheme as UnknownStoreScheme,
        UnsupportedCertVersion as UnsupportedCertVersion,
        WrongIssuer as WrongIssuer,
        error_for_code as error_for_code,
    )
    from ._untrusted import (
        checked_text as checked_text,
        csv_cell as csv_cell,
        loads_untrusted as loads_untrusted,
        printable as printable,
    )
    from .audit import (
        ROTATION as ROTATION,
        BundleReport as BundleReport,
        CertificateVerdict as CertificateVerdict,
        CoverageReport as CoverageReport,
        Registry as Registry,
        RegistryEntry as RegistryEntry,
        build_bundle as build_bundle,
        build_registry as build_registry,
        render_policy as render_policy,
        scan as scan,
        verify_bundle as verify_bundle,
    )
    from .client import (
        Anomaly as Anomaly,
        AuditPage as AuditPage,
        AuthorityClient as AuthorityClient,
        CertificateRecord as CertificateRecord,
        CertificateRequest as CertificateRequest,
        ClientConfig as ClientConfig,
        GenerationSession as GenerationSession,
        IssuedCertificate as IssuedCertificate,
        connect as connect,
        resolve_config as resolve_config,
    )
    from .crypto import (
        ALGORITHM as ALGORITHM,
        BINDING_KEY_BYTES as BINDING_KEY_BYTES,
        JWKS as JWKS,
        MAX_TOKEN_BYTES as MAX_TOKEN_BYTES,
        STATUS_INVALID as STATUS_INVALID,
        STATUS_LIST_TYP as STATUS_LIST_TYP,
        STATUS_SUSPENDED as STATUS_SUSPENDED,
        STATUS_VALID as STATUS_VALID,
        Certificate as Certificate,
        Credential as Credential,
        StatusList as StatusList,
        check_revocation as check_revocation,
        credential_commitment as credential_commitment,
        decode_binding_key as decode_binding_key,
        decode_seed as decode_seed,
        encode_binding_key as encode_binding_key,
        encode_seed as encode_seed,
        new_binding_key as new_binding_key,
        seed_commitment as seed_commitment,
        verify_binding as verify_binding,
        verify_certificate as verify_certificate,
        verify_certificate_at_issuance as verify_certificate_at_issuance,
        verify_credential as verify_credential,
        verify_provenance as verify_provenance,
        verify_status_list as verify_status_list,
    )
    from .model import (
        CERT_LIFETIME as CERT_LIFETIME,
        CERT_VERSION as CERT_VERSION,
        CLASS_NAMES as CLASS_NAMES,
        EMBEDDED_ISSUER_NOTE as EMBEDDED_ISSUER_NOTE,
        GENERATOR_ID as GENERATOR_ID,
        MAPPING_VERSION as MAPPING_VERSION,
        MAX_LENGTH as MAX_LENGTH,
        MIN_LENGTH as MIN_LENGTH,
        NONCE_BYTES as NONCE_BYTES,
        BreachCheck as BreachCheck,
        BreachList as BreachList,
        CertificateClaims as CertificateClaims,
        CharacterPool as CharacterPool,
        EntropyFloor as EntropyFloor,
        EntropyReport as EntropyReport,
        EntropySource as EntropySource,
        GeneratedPassword as GeneratedPassword,
        Generation as Generation,
        GenerationParameters as GenerationParameters,
        PoolMinimums as PoolMinimums,
        Preset as Preset,
        StatusReference as StatusReference,
        Target as Target,
        breach_list as breach_list,
        check_preset as check_preset,
        claim_id_for as claim_id_for,
        count_outputs as count_outputs,
        derive as derive,
        derive_password as derive_password,
        detect_entropy_source as detect_entropy_source,
        entropy_report as entropy_report,
        exact_entropy_bits as exact_entropy_bits,
        generate as generate,
        generate_many as generate_many,
        generate_password as generate_password,
        get_preset as get_preset,
        is_embedded_issuer as is_embedded_issuer,
        list_presets as list_presets,
        preset_id_for as preset_id_for,
        same_standard as same_standard,
        standards_met as standards_met,
    )
    from .stores import (
        STORE_ENTRY_POINT_GROUP as STORE_ENTRY_POINT_GROUP,
        CertificateRefs as CertificateRefs,
        SecretStore as SecretStore,
        StoredCredential as StoredCredential,
        StoreURI as StoreURI,
        WritePlan as WritePlan,
        available_schemes as available_schemes,
        open_store as open_store,
        parse_store_uri as parse_store_uri,
        register_store as register_store,
    )
    from .workflows import (
        CoverageEntry as CoverageEntry,
        ProvisionResult as ProvisionResult,
        StoreResult as StoreResult,
        Verdict as Verdict,
        assess as assess,
        assess_certificate as assess_certificate,
        certify as certify,
        prove_credential as prove_credential,
        provision as provision,
        provision_into_store as provision_into_store,
    )
