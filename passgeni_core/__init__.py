"""PassGeni core: presets, an unbiased generator, exact entropy, certificate
claims and offline verification.

Pure library: no integrations, no web framework, no environment reads deep
inside. Everything public is re-exported here; modules starting with ``_`` are
private.

Quick start::

    from passgeni_core import GenerationParameters, generate, verify_certificate

    params = GenerationParameters.for_preset("soc2")
    result = generate(params)
    result.password            # the secret: never logged, never sent anywhere
    result.entropy.bits        # exact entropy of the generator
    result.standards_met       # every standard these parameters meet

Imports are lazy (PEP 562): ``import passgeni_core`` costs almost nothing, and
a name's module (and its dependencies: pyjwt, cryptography, requests) loads on
first use. That keeps short-lived processes such as the Terraform external
program fast. To export a name, add it to ``_EXPORTS`` *and* to the
``TYPE_CHECKING`` imports below (a test checks they agree).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._binding": (
        "BINDING_KEY_BYTES",
        "Credential",
        "credential_commitment",
        "decode_binding_key",
        "encode_binding_key",
        "new_binding_key",
        "verify_binding",
    ),
    "._breach": (
        "BreachCheck",
        "BreachList",
        "breach_list",
    ),
    "._claims": (
        "CERT_LIFETIME",
        "CERT_VERSION",
        "CertificateClaims",
        "StatusReference",
        "Target",
    ),
    "._client": (
        "Anomaly",
        "AuditPage",
        "AuthorityClient",
        "CertificateRecord",
        "CertificateRequest",
        "GenerationSession",
        "IssuedCertificate",
    ),
    "._config": (
        "ClientConfig",
        "connect",
        "resolve_config",
    ),
    "._entropy": (
        "EntropyReport",
        "count_outputs",
        "entropy_report",
        "exact_entropy_bits",
    ),
    "._entropy_source": (
        "EntropySource",
        "detect_entropy_source",
    ),
    "._errors": (
        "AlgorithmNotAllowed",
        "AuthorityError",
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
        "RateLimited",
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
    "._evidence": (
        "BundleReport",
        "CertificateVerdict",
        "build_bundle",
        "verify_bundle",
    ),
    "._generator": (
        "GeneratedPassword",
        "generate",
        "generate_many",
        "generate_password",
    ),
    "._params": (
        "MAX_LENGTH",
        "MIN_LENGTH",
        "CharacterPool",
        "GenerationParameters",
    ),
    "._policy": (
        "ROTATION",
        "render_policy",
    ),
    "._presets": (
        "CLASS_NAMES",
        "MAPPING_VERSION",
        "Preset",
        "get_preset",
        "list_presets",
    ),
    "._provision": (
        "ProvisionResult",
        "certify",
        "provision",
    ),
    "._registry": (
        "Registry",
        "RegistryEntry",
        "build_registry",
    ),
    "._scan": (
        "assess",
        "CoverageEntry",
        "CoverageReport",
        "scan",
    ),
    "._standards": (
        "check_preset",
        "standards_met",
    ),
    "._status_list": (
        "STATUS_INVALID",
        "STATUS_LIST_TYP",
        "STATUS_SUSPENDED",
        "STATUS_VALID",
        "StatusList",
        "check_revocation",
        "verify_status_list",
    ),
    "._stores": (
        "STORE_ENTRY_POINT_GROUP",
        "CertificateRefs",
        "SecretStore",
        "StoreResult",
        "StoreURI",
        "StoredCredential",
        "WritePlan",
        "available_schemes",
        "open_store",
        "parse_store_uri",
        "provision_into_store",
        "register_store",
    ),
    "._verify": (
        "ALGORITHM",
        "JWKS",
        "MAX_TOKEN_BYTES",
        "Certificate",
        "verify_certificate",
        "verify_certificate_at_issuance",
    ),
}

_MODULE_OF: dict[str, str] = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from ._binding import (
        BINDING_KEY_BYTES as BINDING_KEY_BYTES,
    )
    from ._binding import (
        Credential as Credential,
    )
    from ._binding import (
        credential_commitment as credential_commitment,
    )
    from ._binding import (
        decode_binding_key as decode_binding_key,
    )
    from ._binding import (
        encode_binding_key as encode_binding_key,
    )
    from ._binding import (
        new_binding_key as new_binding_key,
    )
    from ._binding import (
        verify_binding as verify_binding,
    )
    from ._breach import (
        BreachCheck as BreachCheck,
    )
    from ._breach import (
        BreachList as BreachList,
    )
    from ._breach import (
        breach_list as breach_list,
    )
    from ._claims import (
        CERT_LIFETIME as CERT_LIFETIME,
    )
    from ._claims import (
        CERT_VERSION as CERT_VERSION,
    )
    from ._claims import (
        CertificateClaims as CertificateClaims,
    )
    from ._claims import (
        StatusReference as StatusReference,
    )
    from ._claims import (
        Target as Target,
    )
    from ._client import (
        Anomaly as Anomaly,
    )
    from ._client import (
        AuditPage as AuditPage,
    )
    from ._client import (
        AuthorityClient as AuthorityClient,
    )
    from ._client import (
        CertificateRecord as CertificateRecord,
    )
    from ._client import (
        CertificateRequest as CertificateRequest,
    )
    from ._client import (
        GenerationSession as GenerationSession,
    )
    from ._client import (
        IssuedCertificate as IssuedCertificate,
    )
    from ._config import (
        ClientConfig as ClientConfig,
    )
    from ._config import (
        connect as connect,
    )
    from ._config import (
        resolve_config as resolve_config,
    )
    from ._entropy import (
        EntropyReport as EntropyReport,
    )
    from ._entropy import (
        count_outputs as count_outputs,
    )
    from ._entropy import (
        entropy_report as entropy_report,
    )
    from ._entropy import (
        exact_entropy_bits as exact_entropy_bits,
    )
    from ._entropy_source import (
        EntropySource as EntropySource,
    )
    from ._entropy_source import (
        detect_entropy_source as detect_entropy_source,
    )
    from ._errors import (
        AlgorithmNotAllowed as AlgorithmNotAllowed,
    )
    from ._errors import (
        AuthorityError as AuthorityError,
    )
    from ._errors import (
        AuthorityUnavailable as AuthorityUnavailable,
    )
    from ._errors import (
        BadSignature as BadSignature,
    )
    from ._errors import (
        BindingMismatch as BindingMismatch,
    )
    from ._errors import (
        BreachedPassword as BreachedPassword,
    )
    from ._errors import (
        CertificateExpired as CertificateExpired,
    )
    from ._errors import (
        CertificateNotYetValid as CertificateNotYetValid,
    )
    from ._errors import (
        CertificateRevoked as CertificateRevoked,
    )
    from ._errors import (
        ConflictingParameters as ConflictingParameters,
    )
    from ._errors import (
        ForbiddenHeader as ForbiddenHeader,
    )
    from ._errors import (
        InvalidParameters as InvalidParameters,
    )
    from ._errors import (
        InvalidRequest as InvalidRequest,
    )
    from ._errors import (
        InvalidStoreURI as InvalidStoreURI,
    )
    from ._errors import (
        InvalidToken as InvalidToken,
    )
    from ._errors import (
        LengthOutOfRange as LengthOutOfRange,
    )
    from ._errors import (
        MalformedToken as MalformedToken,
    )
    from ._errors import (
        NotFound as NotFound,
    )
    from ._errors import (
        PassgeniError as PassgeniError,
    )
    from ._errors import (
        PermissionDenied as PermissionDenied,
    )
    from ._errors import (
        PresetNotMet as PresetNotMet,
    )
    from ._errors import (
        RateLimited as RateLimited,
    )
    from ._errors import (
        SessionAlreadyUsed as SessionAlreadyUsed,
    )
    from ._errors import (
        SessionExpired as SessionExpired,
    )
    from ._errors import (
        SessionInvalid as SessionInvalid,
    )
    from ._errors import (
        StoreConflict as StoreConflict,
    )
    from ._errors import (
        StoreError as StoreError,
    )
    from ._errors import (
        StoreLimitExceeded as StoreLimitExceeded,
    )
    from ._errors import (
        StoreUnavailable as StoreUnavailable,
    )
    from ._errors import (
        Unauthenticated as Unauthenticated,
    )
    from ._errors import (
        UnknownKey as UnknownKey,
    )
    from ._errors import (
        UnknownPreset as UnknownPreset,
    )
    from ._errors import (
        UnknownStoreScheme as UnknownStoreScheme,
    )
    from ._errors import (
        UnsupportedCertVersion as UnsupportedCertVersion,
    )
    from ._errors import (
        WrongIssuer as WrongIssuer,
    )
    from ._errors import (
        error_for_code as error_for_code,
    )
    from ._evidence import BundleReport as BundleReport
    from ._evidence import CertificateVerdict as CertificateVerdict
    from ._evidence import build_bundle as build_bundle
    from ._evidence import verify_bundle as verify_bundle
    from ._generator import (
        GeneratedPassword as GeneratedPassword,
    )
    from ._generator import (
        generate as generate,
    )
    from ._generator import (
        generate_many as generate_many,
    )
    from ._generator import (
        generate_password as generate_password,
    )
    from ._params import (
        MAX_LENGTH as MAX_LENGTH,
    )
    from ._params import (
        MIN_LENGTH as MIN_LENGTH,
    )
    from ._params import (
        CharacterPool as CharacterPool,
    )
    from ._params import (
        GenerationParameters as GenerationParameters,
    )
    from ._policy import ROTATION as ROTATION
    from ._policy import render_policy as render_policy
    from ._presets import (
        CLASS_NAMES as CLASS_NAMES,
    )
    from ._presets import (
        MAPPING_VERSION as MAPPING_VERSION,
    )
    from ._presets import (
        Preset as Preset,
    )
    from ._presets import (
        get_preset as get_preset,
    )
    from ._presets import (
        list_presets as list_presets,
    )
    from ._provision import (
        ProvisionResult as ProvisionResult,
    )
    from ._provision import (
        certify as certify,
    )
    from ._provision import (
        provision as provision,
    )
    from ._registry import Registry as Registry
    from ._registry import RegistryEntry as RegistryEntry
    from ._registry import build_registry as build_registry
    from ._scan import CoverageEntry as CoverageEntry
    from ._scan import CoverageReport as CoverageReport
    from ._scan import assess as assess
    from ._scan import scan as scan
    from ._standards import (
        check_preset as check_preset,
    )
    from ._standards import (
        standards_met as standards_met,
    )
    from ._status_list import (
        STATUS_INVALID as STATUS_INVALID,
    )
    from ._status_list import (
        STATUS_LIST_TYP as STATUS_LIST_TYP,
    )
    from ._status_list import (
        STATUS_SUSPENDED as STATUS_SUSPENDED,
    )
    from ._status_list import (
        STATUS_VALID as STATUS_VALID,
    )
    from ._status_list import (
        StatusList as StatusList,
    )
    from ._status_list import (
        check_revocation as check_revocation,
    )
    from ._status_list import (
        verify_status_list as verify_status_list,
    )
    from ._stores import STORE_ENTRY_POINT_GROUP as STORE_ENTRY_POINT_GROUP
    from ._stores import CertificateRefs as CertificateRefs
    from ._stores import SecretStore as SecretStore
    from ._stores import StoredCredential as StoredCredential
    from ._stores import StoreResult as StoreResult
    from ._stores import StoreURI as StoreURI
    from ._stores import WritePlan as WritePlan
    from ._stores import available_schemes as available_schemes
    from ._stores import open_store as open_store
    from ._stores import parse_store_uri as parse_store_uri
    from ._stores import provision_into_store as provision_into_store
    from ._stores import register_store as register_store
    from ._verify import (
        ALGORITHM as ALGORITHM,
    )
    from ._verify import (
        JWKS as JWKS,
    )
    from ._verify import (
        MAX_TOKEN_BYTES as MAX_TOKEN_BYTES,
    )
    from ._verify import (
        Certificate as Certificate,
    )
    from ._verify import (
        verify_certificate as verify_certificate,
    )
    from ._verify import (
        verify_certificate_at_issuance as verify_certificate_at_issuance,
    )
