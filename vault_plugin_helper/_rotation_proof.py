"""The rotation Lambda's proof records: ``passgeni-proof/NAME`` beside the rotated secret.

The same record as :class:`~vault_plugin_helper.aws.SecretsManagerStore` keeps (see
:mod:`._aws_proof`), through the Lambda's own ``secretsmanager`` client: createSecret
writes the pending version's entry (version = the rotation token) before the pending
value, keeping the current version's entry, so a rotation that stops anywhere loses no
proof; every step reads the value's proof from the record, or from inside the value
for secrets stored before proof records (those are migrated by the rotation: the
pending value holds the password only). ``PASSGENI_PROOF_LOCATION=inline`` keeps the
proof inside the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from passgeni_core import Credential, StoreError
from passgeni_core.stores import (
    CertificateRefs,
    ProofEntry,
    StoredCredential,
    StoreURI,
    merge_proof,
    needs_proof,
    stored_credentials,
)

from ._aws_proof import PROOF_PREFIX, read_proof, write_proof_record


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def client_call(sm: Any) -> Any:
    """The raw client as the store's ``_call``: AWS errors as one-line StoreErrors."""

    def call(operation: str, what: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        try:
            return getattr(sm, operation)(**kwargs)
        except Exception as exc:
            code = _error_code(exc)
            if missing_ok and code == "ResourceNotFoundException":
                return None
            raise StoreError(
                f"AWS Secrets Manager {what} failed: {code or type(exc).__name__}"
            ) from None

    return call


def stored(
    sm: Any, name: str, key: str, data: Mapping[str, Any], version: str | None
) -> StoredCredential:
    """The credential ``key`` of one version's value, its proof read where it is."""
    uri = StoreURI("aws-sm", name, key, True)
    proof = (
        read_proof(client_call(sm), PROOF_PREFIX + name)[1]
        if needs_proof(data, key, None)
        else None
    )
    (record,) = stored_credentials(
        uri, data, version=version, metadata_refs=None, only_key=key, proof=proof
    )
    return record


def refs_of(
    sm: Any, name: str, key: str, data: Mapping[str, Any], version: str | None
) -> CertificateRefs | None:
    return stored(sm, name, key, data, version).refs


def write_pending_proof(
    sm: Any,
    name: str,
    key: str,
    token: str,
    credential: Credential,
    refs: CertificateRefs,
    current: StoredCredential | None,
    kms_key_id: str | None = None,
) -> None:
    """The pending version's entry, before the pending value (createSecret)."""
    call = client_call(sm)
    previous, existing = read_proof(call, PROOF_PREFIX + name)
    entry = ProofEntry.of(credential, refs.cert_id, refs.cert_url, token)
    keep = current.refs.cert_id if current is not None and current.refs is not None else None
    record = merge_proof(existing, key, entry, keep_cert=keep)
    write_proof_record(
        call, secret=name, token=token, record=record, previous=previous, kms_key_id=kms_key_id
    )
