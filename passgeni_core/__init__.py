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
"""

from ._binding import (
    BINDING_KEY_BYTES,
    Credential,
    credential_commitment,
    decode_binding_key,
    encode_binding_key,
    new_binding_key,
    verify_binding,
)
from ._breach import BreachCheck, BreachList, breach_list
from ._claims import CERT_LIFETIME, CERT_VERSION, CertificateClaims, StatusReference, Target
from ._client import (
    Anomaly,
    AuditPage,
    AuthorityClient,
    CertificateRecord,
    CertificateRequest,
    GenerationSession,
    IssuedCertificate,
)
from ._config import ClientConfig, connect, resolve_config
from ._entropy import EntropyReport, count_outputs, entropy_report, exact_entropy_bits
from ._entropy_source import EntropySource, detect_entropy_source
from ._errors import (
    AlgorithmNotAllowed,
    AuthorityError,
    AuthorityUnavailable,
    BadSignature,
    BindingMismatch,
    BreachedPassword,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    ConflictingParameters,
    ForbiddenHeader,
    InvalidParameters,
    InvalidRequest,
    InvalidStoreURI,
    InvalidToken,
    LengthOutOfRange,
    MalformedToken,
    NotFound,
    PassgeniError,
    PermissionDenied,
    PresetNotMet,
    RateLimited,
    SessionAlreadyUsed,
    SessionExpired,
    SessionInvalid,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreUnavailable,
    Unauthenticated,
    UnknownKey,
    UnknownPreset,
    UnknownStoreScheme,
    UnsupportedCertVersion,
    WrongIssuer,
    error_for_code,
)
from ._generator import GeneratedPassword, generate, generate_many, generate_password
from ._params import MAX_LENGTH, MIN_LENGTH, CharacterPool, GenerationParameters
from ._presets import CLASS_NAMES, MAPPING_VERSION, Preset, get_preset, list_presets
from ._provision import ProvisionResult, certify, provision
from ._standards import check_preset, standards_met
from ._status_list import (
    STATUS_INVALID,
    STATUS_LIST_TYP,
    STATUS_SUSPENDED,
    STATUS_VALID,
    StatusList,
    check_revocation,
    verify_status_list,
)
from ._verify import (
    ALGORITHM,
    JWKS,
    MAX_TOKEN_BYTES,
    Certificate,
    verify_certificate,
    verify_certificate_at_issuance,
)

__version__ = "0.1.0"

__all__ = [
    "STATUS_INVALID",
    "STATUS_LIST_TYP",
    "STATUS_SUSPENDED",
    "STATUS_VALID",
    "StatusList",
    "check_revocation",
    "verify_status_list",
    "ALGORITHM",
    "BINDING_KEY_BYTES",
    "CERT_LIFETIME",
    "CERT_VERSION",
    "CLASS_NAMES",
    "JWKS",
    "MAPPING_VERSION",
    "MAX_LENGTH",
    "MAX_TOKEN_BYTES",
    "MIN_LENGTH",
    "AlgorithmNotAllowed",
    "Anomaly",
    "AuditPage",
    "AuthorityClient",
    "AuthorityError",
    "AuthorityUnavailable",
    "BadSignature",
    "BindingMismatch",
    "BreachCheck",
    "BreachList",
    "BreachedPassword",
    "Certificate",
    "CertificateClaims",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRecord",
    "CertificateRequest",
    "CertificateRevoked",
    "CharacterPool",
    "ClientConfig",
    "ConflictingParameters",
    "Credential",
    "EntropyReport",
    "EntropySource",
    "ForbiddenHeader",
    "GeneratedPassword",
    "GenerationParameters",
    "GenerationSession",
    "InvalidParameters",
    "InvalidRequest",
    "InvalidStoreURI",
    "InvalidToken",
    "IssuedCertificate",
    "LengthOutOfRange",
    "MalformedToken",
    "NotFound",
    "PassgeniError",
    "PermissionDenied",
    "Preset",
    "PresetNotMet",
    "ProvisionResult",
    "RateLimited",
    "SessionAlreadyUsed",
    "SessionExpired",
    "SessionInvalid",
    "StatusReference",
    "StoreConflict",
    "StoreError",
    "StoreLimitExceeded",
    "StoreUnavailable",
    "Target",
    "Unauthenticated",
    "UnknownKey",
    "UnknownPreset",
    "UnknownStoreScheme",
    "UnsupportedCertVersion",
    "WrongIssuer",
    "__version__",
    "breach_list",
    "certify",
    "check_preset",
    "connect",
    "count_outputs",
    "credential_commitment",
    "decode_binding_key",
    "detect_entropy_source",
    "encode_binding_key",
    "entropy_report",
    "error_for_code",
    "exact_entropy_bits",
    "generate",
    "generate_many",
    "generate_password",
    "get_preset",
    "list_presets",
    "new_binding_key",
    "provision",
    "resolve_config",
    "standards_met",
    "verify_binding",
    "verify_certificate",
    "verify_certificate_at_issuance",
]
