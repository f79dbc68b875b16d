"""Certificates as signed objects: base64url and JWS parts, offline verification,
status lists, the binding commitment between a certificate and a password, and the
transparency log's RFC 9162 Merkle proofs and C2SP signed-note checkpoints.

Imports are lazy (see ``passgeni_core._lazy``): a name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, tuple[str, ...]] = {
    "._jws": (
        "P256_ORDER",
        "b64url_decode",
        "b64url_encode",
        "canonical_segments",
        "jwk_thumbprint",
        "low_s",
        "parse_header",
        "unverified_payload",
    ),
    "._verify": (
        "ALGORITHM",
        "JWKS",
        "MAX_TOKEN_BYTES",
        "Certificate",
        "aware_now",
        "verify_certificate",
        "verify_certificate_at_issuance",
        "verify_jws",
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
    "._merkle": (
        "EMPTY_ROOT",
        "HASH_SIZE",
        "MerkleTree",
        "leaf_hash",
        "node_hash",
        "verify_consistency",
        "verify_inclusion",
    ),
    "._note": (
        "Checkpoint",
        "NoteSigner",
        "NoteVerifier",
        "checkpoint_text",
        "open_checkpoint",
        "open_note",
        "parse_checkpoint",
    ),
    "._tlog": (
        "MAX_PROOF_HASHES",
        "check_consistency",
        "check_inclusion",
        "decode_proof",
        "issuance_leaf",
        "revocation_leaf",
    ),
    "._intoto": (
        "BINDING_DIGEST",
        "PAYLOAD_TYPE",
        "PREDICATE_TYPE",
        "SEED_DIGEST",
        "STATEMENT_TYPE",
        "Attestation",
        "attestation_statement",
        "der_signature",
        "dsse_envelope",
        "pae",
        "statement_payload",
        "verify_attestation",
    ),
    "._binding": (
        "BINDING_KEY_BYTES",
        "Credential",
        "credential_commitment",
        "decode_binding_key",
        "decode_nonce",
        "decode_seed",
        "encode_binding_key",
        "encode_seed",
        "new_binding_key",
        "seed_commitment",
        "verify_binding",
        "verify_credential",
        "verify_provenance",
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._binding import (
        BINDING_KEY_BYTES as BINDING_KEY_BYTES,
        Credential as Credential,
        credential_commitment as credential_commitment,
        decode_binding_key as decode_binding_key,
        decode_nonce as decode_nonce,
        decode_seed as decode_seed,
        encode_binding_key as encode_binding_key,
        encode_seed as encode_seed,
        new_binding_key as new_binding_key,
        seed_commitment as seed_commitment,
        verify_binding as verify_binding,
        verify_credential as verify_credential,
        verify_provenance as verify_provenance,
    )
    from ._intoto import (
        BINDING_DIGEST as BINDING_DIGEST,
        PAYLOAD_TYPE as PAYLOAD_TYPE,
        PREDICATE_TYPE as PREDICATE_TYPE,
        SEED_DIGEST as SEED_DIGEST,
        STATEMENT_TYPE as STATEMENT_TYPE,
        Attestation as Attestation,
        attestation_statement as attestation_statement,
        der_signature as der_signature,
        dsse_envelope as dsse_envelope,
        pae as pae,
        statement_payload as statement_payload,
        verify_attestation as verify_attestation,
    )
    from ._jws import (
        P256_ORDER as P256_ORDER,
        b64url_decode as b64url_decode,
        b64url_encode as b64url_encode,
        canonical_segments as canonical_segments,
        jwk_thumbprint as jwk_thumbprint,
        low_s as low_s,
        parse_header as parse_header,
        unverified_payload as unverified_payload,
    )
    from ._merkle import (
        EMPTY_ROOT as EMPTY_ROOT,
        HASH_SIZE as HASH_SIZE,
        MerkleTree as MerkleTree,
        leaf_hash as leaf_hash,
        node_hash as node_hash,
        verify_consistency as verify_consistency,
        verify_inclusion as verify_inclusion,
    )
    from ._note import (
        Checkpoint as Checkpoint,
        NoteSigner as NoteSigner,
        NoteVerifier as NoteVerifier,
        checkpoint_text as checkpoint_text,
        open_checkpoint as open_checkpoint,
        open_note as open_note,
        parse_checkpoint as parse_checkpoint,
    )
    from ._status_list import (
        STATUS_INVALID as STATUS_INVALID,
        STATUS_LIST_TYP as STATUS_LIST_TYP,
        STATUS_SUSPENDED as STATUS_SUSPENDED,
        STATUS_VALID as STATUS_VALID,
        StatusList as StatusList,
        check_revocation as check_revocation,
        verify_status_list as verify_status_list,
    )
    from ._tlog import (
        MAX_PROOF_HASHES as MAX_PROOF_HASHES,
        check_consistency as check_consistency,
        check_inclusion as check_inclusion,
        decode_proof as decode_proof,
        issuance_leaf as issuance_leaf,
        revocation_leaf as revocation_leaf,
    )
    from ._verify import (
        ALGORITHM as ALGORITHM,
        JWKS as JWKS,
        MAX_TOKEN_BYTES as MAX_TOKEN_BYTES,
        Certificate as Certificate,
        aware_now as aware_now,
        verify_certificate as verify_certificate,
        verify_certificate_at_issuance as verify_certificate_at_issuance,
        verify_jws as verify_jws,
    )
