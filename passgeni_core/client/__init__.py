"""The HTTP client of a PassGeni authority, its answers as typed records, the wire
contract they are decoded with (one msgspec ``Struct`` per JSON body), and its configuration.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._client": (
        "MAX_BATCH",
        "MAX_BATCH_BODY",
        "MAX_LOOKUP",
        "AuthorityClient",
    ),
    "._models": (
        "Anomaly",
        "AuditPage",
        "CertificateRecord",
        "CertificateRequest",
        "GenerationSession",
        "IssuedCertificate",
    ),
    "._wire": (
        "ANSWER_BODIES",
        "REQUEST_BODIES",
        "AnomalyBody",
        "AuditPageBody",
        "CertificateRecordBody",
        "CertificateStatus",
        "ErrorBody",
        "GenerateBatchBody",
        "GenerateBody",
        "GenerationBatchBody",
        "GenerationSessionBody",
        "IssueBatchBody",
        "IssueBody",
        "IssueErrorBody",
        "IssuedBatchBody",
        "IssuedCertificateBody",
        "JwkBody",
        "JwksBody",
        "LogEntryBody",
        "LogProofBody",
        "LookupAnswerBody",
        "LookupBody",
        "RevokeBody",
        "ScanFindingBody",
        "ScanReceiptBody",
        "ScanStatus",
        "ScanSubmissionBody",
        "HealthBody",
        "ManifestBody",
        "ManifestSignatureBody",
        "SigningKeyEventBody",
        "SigningKeysBody",
        "StatusListsBody",
        "TargetBody",
        "UsageBody",
        "openapi_components",
    ),
    "._config": (
        "DEFAULT_CONFIG_PATH",
        "EMBEDDED",
        "EMBEDDED_ENTRY_POINT_GROUP",
        "ClientConfig",
        "connect",
        "default_config_path",
        "resolve_config",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._client import (
        MAX_BATCH as MAX_BATCH,
        MAX_BATCH_BODY as MAX_BATCH_BODY,
        MAX_LOOKUP as MAX_LOOKUP,
        AuthorityClient as AuthorityClient,
    )
    from ._config import (
        DEFAULT_CONFIG_PATH as DEFAULT_CONFIG_PATH,
        EMBEDDED as EMBEDDED,
        EMBEDDED_ENTRY_POINT_GROUP as EMBEDDED_ENTRY_POINT_GROUP,
        ClientConfig as ClientConfig,
        connect as connect,
        default_config_path as default_config_path,
        resolve_config as resolve_config,
    )
    from ._models import (
        Anomaly as Anomaly,
        AuditPage as AuditPage,
        CertificateRecord as CertificateRecord,
        CertificateRequest as CertificateRequest,
        GenerationSession as GenerationSession,
        IssuedCertificate as IssuedCertificate,
    )
    from ._wire import (
        ANSWER_BODIES as ANSWER_BODIES,
        REQUEST_BODIES as REQUEST_BODIES,
        AnomalyBody as AnomalyBody,
        AuditPageBody as AuditPageBody,
        CertificateRecordBody as CertificateRecordBody,
        CertificateStatus as CertificateStatus,
        ErrorBody as ErrorBody,
        GenerateBatchBody as GenerateBatchBody,
        GenerateBody as GenerateBody,
        GenerationBatchBody as GenerationBatchBody,
        GenerationSessionBody as GenerationSessionBody,
        HealthBody as HealthBody,
        IssueBatchBody as IssueBatchBody,
        IssueBody as IssueBody,
        IssuedBatchBody as IssuedBatchBody,
        IssuedCertificateBody as IssuedCertificateBody,
        IssueErrorBody as IssueErrorBody,
        JwkBody as JwkBody,
        JwksBody as JwksBody,
        LogEntryBody as LogEntryBody,
        LogProofBody as LogProofBody,
        LookupAnswerBody as LookupAnswerBody,
        LookupBody as LookupBody,
        ManifestBody as ManifestBody,
        ManifestSignatureBody as ManifestSignatureBody,
        RevokeBody as RevokeBody,
        ScanFindingBody as ScanFindingBody,
        ScanReceiptBody as ScanReceiptBody,
        ScanStatus as ScanStatus,
        ScanSubmissionBody as ScanSubmissionBody,
        SigningKeyEventBody as SigningKeyEventBody,
        SigningKeysBody as SigningKeysBody,
        StatusListsBody as StatusListsBody,
        TargetBody as TargetBody,
        UsageBody as UsageBody,
        openapi_components as openapi_components,
    )
