"""What the tools do with the layers below: certify, provision into a store,
assess a stored credential, rotate (one, or many from an inventory).

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._provision": (
        "CertifyRequest",
        "PendingCertificate",
        "ProvisionResult",
        "accept_issued",
        "certify",
        "certify_many",
        "issue_many",
        "provision",
    ),
    "._into_store": (
        "REVOKE_REASON_NOT_STORED",
        "REVOKE_REASON_ROTATED",
        "StoreResult",
        "provision_into_store",
        "rotate",
        "store_certified",
    ),
    "._assessment": ("assess",),
    "._certificate": ("assess_certificate",),
    "._prove": ("GENERATION_NOT_PROVABLE", "Proof", "prove_credential"),
    "._verdict": (
        "FAILING",
        "REASONS",
        "STATUSES",
        "CoverageEntry",
        "Verdict",
    ),
    "._rotation": (
        "REVOKE_REASON_NOT_APPLIED",
        "RotationResult",
        "ensure_rotated",
    ),
    "._targets": (
        "TARGET_ENTRY_POINT_GROUP",
        "CredentialTarget",
        "open_target",
        "register_target",
    ),
    "._keepers": (
        "MAX_KEEPER",
        "check_keeper",
        "keeper_label",
        "keeper_of",
        "with_exclusions",
    ),
    "._bulk": (
        "DEFAULT_CHUNK",
        "BulkOutcome",
        "rotate_many",
    ),
    "._inventory": (
        "InventoryEntry",
        "parse_inventory",
    ),
    ".._errors": (
        "TargetError",
        "TargetLoginFailed",
        "TargetUnavailable",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .._errors import (
        TargetError as TargetError,
        TargetLoginFailed as TargetLoginFailed,
        TargetUnavailable as TargetUnavailable,
    )
    from ._assessment import assess as assess
    from ._bulk import (
        DEFAULT_CHUNK as DEFAULT_CHUNK,
        BulkOutcome as BulkOutcome,
        rotate_many as rotate_many,
    )
    from ._certificate import assess_certificate as assess_certificate
    from ._into_store import (
        REVOKE_REASON_NOT_STORED as REVOKE_REASON_NOT_STORED,
        REVOKE_REASON_ROTATED as REVOKE_REASON_ROTATED,
        StoreResult as StoreResult,
        provision_into_store as provision_into_store,
        rotate as rotate,
        store_certified as store_certified,
    )
    from ._inventory import InventoryEntry as InventoryEntry, parse_inventory as parse_inventory
    from ._keepers import (
        MAX_KEEPER as MAX_KEEPER,
        check_keeper as check_keeper,
        keeper_label as keeper_label,
        keeper_of as keeper_of,
        with_exclusions as with_exclusions,
    )
    from ._prove import (
        GENERATION_NOT_PROVABLE as GENERATION_NOT_PROVABLE,
        Proof as Proof,
        prove_credential as prove_credential,
    )
    from ._provision import (
        CertifyRequest as CertifyRequest,
        PendingCertificate as PendingCertificate,
        ProvisionResult as ProvisionResult,
        accept_issued as accept_issued,
        certify as certify,
        certify_many as certify_many,
        issue_many as issue_many,
        provision as provision,
    )
    from ._rotation import (
        REVOKE_REASON_NOT_APPLIED as REVOKE_REASON_NOT_APPLIED,
        RotationResult as RotationResult,
        ensure_rotated as ensure_rotated,
    )
    from ._targets import (
        TARGET_ENTRY_POINT_GROUP as TARGET_ENTRY_POINT_GROUP,
        CredentialTarget as CredentialTarget,
        open_target as open_target,
        register_target as register_target,
    )
    from ._verdict import (
        FAILING as FAILING,
        REASONS as REASONS,
        STATUSES as STATUSES,
        CoverageEntry as CoverageEntry,
        Verdict as Verdict,
    )
