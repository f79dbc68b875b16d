"""Secret stores: the public backend interface.

What a third-party backend implements and uses: the :class:`SecretStore`
protocol and its :class:`WritePlan`, the field codec (:func:`credential_fields`,
:func:`stored_credentials`, :class:`CertificateRefs`), the URI grammar with a
:class:`LocationGrammar` per scheme, and the ``passgeni.stores`` entry-point
registry, plus what a backend handles (:class:`Credential`) and raises (the
``StoreError`` family), and :class:`MemoryStore`, the reference backend
(``memory://``). See ``docs/stores.md`` for a worked backend.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    ".._errors": (
        "InvalidStoreURI",
        "StoreConflict",
        "StoreError",
        "StoreLimitExceeded",
        "StoreNotFound",
        "StoreUnavailable",
        "UnknownStoreScheme",
    ),
    "..crypto": ("Credential",),
    "._uri": (
        "DEFAULT_KEY",
        "FIELD_MARK",
        "GENERIC_LOCATIONS",
        "LocationGrammar",
        "StoreScope",
        "StoreURI",
        "check_segments",
    ),
    "._resolve": (
        "open_store",
        "parse_store_uri",
    ),
    "._registry": (
        "STORE_ENTRY_POINT_GROUP",
        "available_schemes",
        "location_grammar",
        "register_store",
        "store_class",
        "store_settings",
    ),
    "._memory": (
        "MemoryLocations",
        "MemorySpace",
        "MemoryStore",
    ),
    "._protocol": (
        "SecretStore",
        "WritePlan",
        "plan_absent",
        "store_scope",
        "store_target",
        "write_proof",
    ),
    "._proof": (
        "FIELD_PROOF",
        "MAX_PROOF_ENTRIES",
        "PROOF_INLINE",
        "PROOF_LOCATIONS",
        "PROOF_SIBLING",
        "ProofEntry",
        "merge_proof",
        "pick_proof",
        "proof_entries",
        "proof_fields",
        "proof_keys",
        "proof_location_option",
    ),
    "._codec": (
        "FIELD_BINDING_KEY",
        "FIELD_CERT_ID",
        "FIELD_CERT_URL",
        "FIELD_SEED",
        "METADATA_KEYS",
        "META_CERT_ID",
        "META_CERT_URL",
        "META_EXPIRES_AT",
        "META_STANDARD",
        "META_VERSION",
        "CertificateRefs",
        "StoredCredential",
        "certified_keys",
        "clean_value_fields",
        "needs_proof",
        "credential_field_names",
        "credential_fields",
        "parse_credential_fields",
        "merge_credential_fields",
        "parse_seed",
        "stored_credentials",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .._errors import (
        InvalidStoreURI as InvalidStoreURI,
        StoreConflict as StoreConflict,
        StoreError as StoreError,
        StoreLimitExceeded as StoreLimitExceeded,
        StoreNotFound as StoreNotFound,
        StoreUnavailable as StoreUnavailable,
        UnknownStoreScheme as UnknownStoreScheme,
    )
    from ..crypto import Credential as Credential
    from ._codec import (
        FIELD_BINDING_KEY as FIELD_BINDING_KEY,
        FIELD_CERT_ID as FIELD_CERT_ID,
        FIELD_CERT_URL as FIELD_CERT_URL,
        FIELD_SEED as FIELD_SEED,
        META_CERT_ID as META_CERT_ID,
        META_CERT_URL as META_CERT_URL,
        META_EXPIRES_AT as META_EXPIRES_AT,
        META_STANDARD as META_STANDARD,
        META_VERSION as META_VERSION,
        METADATA_KEYS as METADATA_KEYS,
        CertificateRefs as CertificateRefs,
        StoredCredential as StoredCredential,
        certified_keys as certified_keys,
        clean_value_fields as clean_value_fields,
        credential_field_names as credential_field_names,
        credential_fields as credential_fields,
        merge_credential_fields as merge_credential_fields,
        needs_proof as needs_proof,
        parse_credential_fields as parse_credential_fields,
        parse_seed as parse_seed,
        stored_credentials as stored_credentials,
    )
    from ._memory import (
        MemoryLocations as MemoryLocations,
        MemorySpace as MemorySpace,
        MemoryStore as MemoryStore,
    )
    from ._proof import (
        FIELD_PROOF as FIELD_PROOF,
        MAX_PROOF_ENTRIES as MAX_PROOF_ENTRIES,
        PROOF_INLINE as PROOF_INLINE,
        PROOF_LOCATIONS as PROOF_LOCATIONS,
        PROOF_SIBLING as PROOF_SIBLING,
        ProofEntry as ProofEntry,
        merge_proof as merge_proof,
        pick_proof as pick_proof,
        proof_entries as proof_entries,
        proof_fields as proof_fields,
        proof_keys as proof_keys,
        proof_location_option as proof_location_option,
    )
    from ._protocol import (
        SecretStore as SecretStore,
        WritePlan as WritePlan,
        plan_absent as plan_absent,
        store_scope as store_scope,
        store_target as store_target,
        write_proof as write_proof,
    )
    from ._registry import (
        STORE_ENTRY_POINT_GROUP as STORE_ENTRY_POINT_GROUP,
        available_schemes as available_schemes,
        location_grammar as location_grammar,
        register_store as register_store,
        store_class as store_class,
        store_settings as store_settings,
    )
    from ._resolve import open_store as open_store, parse_store_uri as parse_store_uri
    from ._uri import (
        DEFAULT_KEY as DEFAULT_KEY,
        FIELD_MARK as FIELD_MARK,
        GENERIC_LOCATIONS as GENERIC_LOCATIONS,
        LocationGrammar as LocationGrammar,
        StoreScope as StoreScope,
        StoreURI as StoreURI,
        check_segments as check_segments,
    )
