"""Kubernetes proof records: the Secret ``NAME-passgeni-proof`` beside the Secret ``NAME``.

Same namespace, labelled ``passgeni.ai/proof: "true"`` and annotated
``passgeni.ai/proof-of: NAME``; its data holds the proof record (see
``passgeni_core.stores``' proof records: a ``KEY.passgeni-proof`` field per key,
base64 as Kubernetes requires). RBAC grants it apart from the Secret workloads
mount (``resourceNames``), so ``envFrom`` and volumes of ``NAME`` never carry a seed.
Written before the value: created with ``POST`` (409 when another writer created it
meanwhile), else server-side apply carrying the ``resourceVersion`` read
(check-and-set on a real API server).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from passgeni_core import StoreConflict, StoreLimitExceeded

from ._api import SecretsApi
from ._secret import ANNOTATION_PREFIX, as_dict, b64, decode_data, metadata_of

PROOF_SUFFIX = "-passgeni-proof"
PROOF_LABEL = ANNOTATION_PREFIX + "proof"
PROOF_OF = ANNOTATION_PREFIX + "proof-of"
_MAX_NAME = 253


def proof_name(namespace: str, name: str) -> str:
    """The proof record's Secret name; refused when Kubernetes would refuse it."""
    sibling = name + PROOF_SUFFIX
    if len(sibling) > _MAX_NAME:
        raise StoreLimitExceeded(
            f"k8s://{namespace}/{name}: the proof record's name {name[:40]}...{PROOF_SUFFIX} "
            f"would be longer than {_MAX_NAME} characters; use a shorter Secret name or "
            "proof_location=inline"
        )
    return sibling


def is_proof(obj: Mapping[str, Any]) -> bool:
    """Whether a listed Secret is a proof record (never reported as a credential)."""
    meta = metadata_of(obj)
    labels = as_dict(meta.get("labels"))
    return labels.get(PROOF_LABEL) == "true" or str(meta.get("name") or "").endswith(PROOF_SUFFIX)


def proof_record(obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The proof record held by a proof Secret (decoded), or None."""
    return None if obj is None else decode_data(as_dict(obj.get("data")))


def write_proof_record(
    api: SecretsApi,
    namespace: str,
    name: str,
    record: Mapping[str, str],
    current: Mapping[str, Any] | None,
) -> None:
    """Create the proof Secret (``current`` None) or apply its new data."""
    sibling = proof_name(namespace, name)
    data = {k: b64(v) for k, v in record.items()}
    secrets = tuple(record.values()) + tuple(data.values())
    metadata: dict[str, Any] = {
        "name": sibling,
        "namespace": namespace,
        "labels": {PROOF_LABEL: "true"},
        "annotations": {PROOF_OF: name},
    }
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata}
    body["data"] = data
    if current is None:
        try:
            api.create(namespace, sibling, body, secrets=secrets)
        except StoreConflict:
            raise StoreConflict(
                f"k8s://{namespace}/{sibling}: the proof record was created by another writer "
                "meanwhile; nothing written"
            ) from None
        return
    version = metadata_of(current).get("resourceVersion")
    if version:
        metadata["resourceVersion"] = version
    api.apply(
        namespace, sibling, body, f"write proof record {namespace}/{sibling}", secrets=secrets
    )
