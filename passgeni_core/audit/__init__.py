"""The auditor's toolkit: coverage scans, certificate registries, evidence bundles, policies,
per-certificate provenance records.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._scan": (
        "CSV_FIELDS",
        "CoverageReport",
        "scan",
    ),
    "._registry": (
        "REGISTRY_CSV_FIELDS",
        "Registry",
        "RegistryEntry",
        "build_registry",
    ),
    "._oscal": (
        "CONTROLS",
        "OSCAL_NS",
        "AssessedCredential",
        "oscal_assessment",
        "oscal_from_registry",
        "oscal_from_scan",
    ),
    "._evidence": ("BUNDLE_FORMAT", "MANIFEST_TYP", "build_bundle"),
    "._evidence_check": ("BundleReport", "CertificateVerdict", "verify_bundle"),
    "._statements": ("SourceStatements", "source_statements"),
    "._provenance_doc": ("PROVENANCE_FORMATS", "ProvenanceRecord", "provenance_record"),
    "._policy": (
        "POLICY_FORMATS",
        "ROTATION",
        "Rotation",
        "parse_standards",
        "render_policy",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._evidence import (
        BUNDLE_FORMAT as BUNDLE_FORMAT,
        MANIFEST_TYP as MANIFEST_TYP,
        build_bundle as build_bundle,
    )
    from ._evidence_check import (
        BundleReport as BundleReport,
        CertificateVerdict as CertificateVerdict,
        verify_bundle as verify_bundle,
    )
    from ._oscal import (
        CONTROLS as CONTROLS,
        OSCAL_NS as OSCAL_NS,
        AssessedCredential as AssessedCredential,
        oscal_assessment as oscal_assessment,
        oscal_from_registry as oscal_from_registry,
        oscal_from_scan as oscal_from_scan,
    )
    from ._policy import (
        POLICY_FORMATS as POLICY_FORMATS,
        ROTATION as ROTATION,
        Rotation as Rotation,
        parse_standards as parse_standards,
        render_policy as render_policy,
    )
    from ._provenance_doc import (
        PROVENANCE_FORMATS as PROVENANCE_FORMATS,
        ProvenanceRecord as ProvenanceRecord,
        provenance_record as provenance_record,
    )
    from ._registry import (
        REGISTRY_CSV_FIELDS as REGISTRY_CSV_FIELDS,
        Registry as Registry,
        RegistryEntry as RegistryEntry,
        build_registry as build_registry,
    )
    from ._scan import CSV_FIELDS as CSV_FIELDS, CoverageReport as CoverageReport, scan as scan
    from ._statements import (
        SourceStatements as SourceStatements,
        source_statements as source_statements,
    )
