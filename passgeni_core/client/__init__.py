"""The HTTP client of a PassGeni authority, its answers as typed records, and its configuration.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._client": (
        "MAX_BATCH",
        "MAX_BATCH_BODY",
        "AuthorityClient",
    ),
    "._models": (
        "Anomaly",
        "AuditPage",
        "CertificateRecord",
        "CertificateRequest",
        "CertificateStatus",
        "GenerationSession",
        "IssuedCertificate",
    ),
    "._config": (
        "DEFAULT_CONFIG_PATH",
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
        AuthorityClient as AuthorityClient,
    )
    from ._config import (
        DEFAULT_CONFIG_PATH as DEFAULT_CONFIG_PATH,
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
        CertificateStatus as CertificateStatus,
        GenerationSession as GenerationSession,
        IssuedCertificate as IssuedCertificate,
    )
