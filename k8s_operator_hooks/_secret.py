"""The Secret as a document: where the credentials and certificate references sit in it.

Pure functions over a Secret's JSON (plain dicts, as the API server sends
them), no API calls: the layout is described in :mod:`k8s_operator_hooks.store`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from passgeni_core.stores import (
    METADATA_KEYS,
    CertificateRefs,
    StoredCredential,
    StoreURI,
    certified_keys,
    credential_field_names,
    stored_credentials,
)

__all__ = [
    "ANNOTATION_NAMES",
    "ANNOTATION_PREFIX",
    "LEGACY_PREFIX",
    "MAX_ANNOTATIONS_BYTES",
    "MAX_SECRET_DATA_BYTES",
    "annotation_refs",
    "annotations_for",
    "annotations_size",
    "apply_intent",
    "as_dict",
    "b64",
    "data_size",
    "decode_data",
    "holds_credentials",
    "metadata_of",
    "records",
]

ANNOTATION_PREFIX = "passgeni.ai/"
LEGACY_PREFIX = "passgenni-"
#: ``passgeni-cert-url`` -> ``passgeni.ai/cert-url`` (and so on for every metadata key).
ANNOTATION_NAMES: dict[str, str] = {
    name: ANNOTATION_PREFIX + name.removeprefix("passgeni-") for name in METADATA_KEYS
}
#: Spellings read when scanning, canonical first: ``passgeni.ai/...``, then legacy ``passgenni-...``.
_ALIASES: dict[str, str] = {
    **{annotation: name for name, annotation in ANNOTATION_NAMES.items()},
    **{LEGACY_PREFIX + name.removeprefix("passgeni-"): name for name in METADATA_KEYS},
}
MAX_SECRET_DATA_BYTES = 1024 * 1024
MAX_ANNOTATIONS_BYTES = 256 * 1024


def annotations_for(refs: CertificateRefs) -> dict[str, str]:
    """The ``passgeni.ai/*`` annotations of ``refs`` (empty values left out)."""
    return {ANNOTATION_NAMES[name]: value for name, value in refs.to_metadata().items()}


def annotation_refs(annotations: Mapping[str, Any] | None) -> CertificateRefs | None:
    """The certificate references in a Secret's annotations (any spelling), or None."""
    merged: dict[str, str] = {}
    for alias, name in _ALIASES.items():
        value = (annotations or {}).get(alias)
        if isinstance(value, str) and value:
            merged.setdefault(name, value)
    url = merged.get("passgeni-cert-url")
    if url and not merged.get("passgeni-cert-id"):
        last = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if last and "://" not in url.rsplit("/", 1)[-1]:
            merged["passgeni-cert-id"] = last
    return CertificateRefs.from_metadata(merged)


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def metadata_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return as_dict(obj.get("metadata"))


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_data(data: Mapping[str, Any] | None) -> dict[str, str]:
    """A Secret's ``data`` as text (values that are not valid base64 are left out)."""
    out: dict[str, str] = {}
    for name, value in (data or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        out[name] = raw.decode("utf-8", errors="replace")
    return out


def annotations_size(annotations: Mapping[str, Any]) -> int:
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())


def data_size(data: Mapping[str, Any]) -> int:
    """Decoded size of a Secret's data (what the API server's 1 MiB limit counts)."""
    total = 0
    for value in data.values():
        if isinstance(value, str):
            total += len(value) * 3 // 4
    return total


def records(
    uri: StoreURI,
    obj: Mapping[str, Any],
    only_key: str | None,
    proof: Mapping[str, str] | None = None,
) -> list[StoredCredential]:
    """The credentials of one Secret (``uri`` names it; see ``stored_credentials``);
    ``proof``: its proof record's data (decoded), when it has one."""
    return stored_credentials(
        uri,
        decode_data(as_dict(obj.get("data"))),
        version=None,
        metadata_refs=annotation_refs(metadata_of(obj).get("annotations")),
        only_key=only_key,
        proof=proof,
    )


def apply_intent(
    obj: Mapping[str, Any],
    *,
    data: Mapping[str, str],
    annotations: Mapping[str, str] | None,
    keys: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """The full server-side-apply body of the ``passgeni`` manager (see the store's doc).

    ``data`` (base64 values) is laid over the certified keys' current fields (a key
    it rewrites keeps none of its earlier companion fields);
    ``annotations`` replaces our annotations (None keeps the current ones).
    ``keys``: the keys whose proof is in the proof record (sibling layout): their
    ``KEY`` field is ours too, and omitting it would make server-side apply remove it.
    """
    meta = metadata_of(obj)
    current = as_dict(obj.get("data"))
    fields: dict[str, str] = {}
    for key in keys:
        if key not in data and isinstance(current.get(key), str):
            fields[key] = current[key]
    for key in certified_keys(decode_data(current)):
        if key in data:
            continue  # rewritten: an earlier credential's companions (binding key) go
        for name in credential_field_names(key):
            if isinstance(current.get(name), str):
                fields[name] = current[name]
    fields.update(data)
    if annotations is None:
        existing = as_dict(meta.get("annotations"))
        annotations = {k: v for k, v in existing.items() if k in ANNOTATION_NAMES.values() and v}
    metadata: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if meta.get("resourceVersion"):
        metadata["resourceVersion"] = meta["resourceVersion"]
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": fields}


def holds_credentials(obj: Mapping[str, Any], key: str) -> bool:
    """Whether a Secret holds a credential to report (service-account tokens, TLS... do not).

    Listed: Secrets with certified keys, with passgeni annotations (any
    spelling, including ``passgeni.ai/preset``), or with the scanned key
    (default ``password``) in their data.
    """
    data = as_dict(obj.get("data"))
    if key in data or any(isinstance(n, str) and ".passgeni-" in n for n in data):
        return True
    annotations = metadata_of(obj).get("annotations")
    return isinstance(annotations, dict) and any(
        isinstance(n, str) and (n.startswith(ANNOTATION_PREFIX) or n.startswith(LEGACY_PREFIX))
        for n in annotations
    )
