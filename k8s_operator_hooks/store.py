"""Kubernetes Secret backend for ``k8s://NAMESPACE/NAME#KEY``.

Connection: kubeconfig or in-cluster config, as ``kubectl`` (see
:mod:`k8s_operator_hooks._kube`); options ``api_client=`` (an existing
``kubernetes.client.ApiClient``, not closed by the store), ``host=`` (a plain
base URL), ``kubeconfig=``, ``context=``, ``in_cluster=``, ``environ=``,
``timeout=`` (seconds per request, default 30). The ``kubernetes`` package is
imported lazily, when the store is opened.

What is stored in the Secret (``data`` values are base64, as Kubernetes requires),
by default (``proof_location=sibling``): ``data[KEY]``, the password, only, and the
annotations below; the seed and references go to the proof record, the Secret
``NAME-passgeni-proof`` (see :mod:`._proof`), written first. With
``proof_location=inline``, and in Secrets written before proof records::

    data[KEY]                            the password
    data[KEY.passgeni-seed]              the generation seed (re-derives the password)
    data[KEY.passgeni-binding-key]       instead, for older certificates: the binding key
    data[KEY.passgeni-cert-id]           the certificate id
    data[KEY.passgeni-cert-url]          the certificate URL
    metadata.annotations:
        passgeni.ai/cert-url, passgeni.ai/cert-id, passgeni.ai/standard,
        passgeni.ai/expires-at           for auditors (``kubectl describe``)

Other data keys, labels and annotations are never touched. The annotations
describe the certificate written last; with several keys in one Secret each
key's own references are in its data fields (authoritative, scanned per key).
Kubernetes keeps no history of values, so the certificate's ``target.version``
is empty (``resourceVersion`` changes on every metadata update and cannot be
predicted): a scan detects a changed value by the binding check.
When scanning, the seed document's legacy spelling ``passgenni-cert-url`` (and
``passgenni-cert-id``) is read as an alias; when only a URL is present the
certificate id is its last path segment (``.../cert/ID``).

Writes (see ``passgeni_core.workflows.provision_into_store`` for the order):

* A missing Secret is created with ``POST`` (``fieldManager=passgeni``):
  create-if-absent; if another writer created it meanwhile the API server
  answers 409 and nothing is written (:class:`StoreConflict`).
* An existing Secret is updated with **server-side apply**
  (``PATCH`` ``application/apply-patch+yaml``, ``fieldManager=passgeni``,
  ``force=true``) whose body carries ``metadata.resourceVersion`` as read, so
  the API server refuses it (409, :class:`StoreConflict`) if the Secret changed
  since ``prepare``: check-and-set. Because server-side apply removes fields a
  manager applied before and omits now, every apply sends the complete intent
  of the ``passgeni`` manager: the data fields of every certified key and our
  annotations, at their current values, plus the change.

Limits enforced before writing: a Secret's data at most 1 MiB, its annotations
at most 256 KiB in total (what the API server validates).

What the tests can and cannot show (``tests/integration/k8s_operator_hooks``): they run
against the ``kmock`` emulator, which tolerates server-side apply only as a
plain JSON merge (no managed fields, no removal of omitted fields, no
conflicts) and keeps no ``resourceVersion``. So the tests check what is
observable there: create-if-absent (409), the round trip, that other data keys
and other controllers' annotations survive, and error mapping; the field
ownership and the ``resourceVersion`` precondition are the API server's
documented behaviour and are only exercised on a real cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from passgeni_core import (
    Credential,
    InvalidStoreURI,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreNotFound,
    encode_binding_key,
    encode_seed,
)
from passgeni_core.stores import (
    CertificateRefs,
    ProofEntry,
    StoredCredential,
    StoreURI,
    WritePlan,
    clean_value_fields,
    credential_field_names,
    credential_fields,
    merge_proof,
    needs_proof,
    proof_keys,
    proof_location_option,
)

from ._api import SecretsApi
from ._kube import describe_host, load_configuration
from ._proof import is_proof, proof_name, proof_record, write_proof_record
from ._secret import (
    ANNOTATION_NAMES,
    ANNOTATION_PREFIX,
    MAX_ANNOTATIONS_BYTES,
    MAX_SECRET_DATA_BYTES,
    annotation_refs,
    annotations_for,
    annotations_size,
    apply_intent,
    as_dict,
    b64,
    data_size,
    decode_data,
    holds_credentials,
    metadata_of,
    records,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "FIELD_MANAGER",
    "KubernetesLocations",
    "KubernetesSecretStore",
    "annotation_refs",
    "annotations_for",
]

FIELD_MANAGER = "passgeni"
DEFAULT_TIMEOUT = 30.0
_CONFLICT_RETRIES = 3
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubernetesLocations:
    """``k8s://NAMESPACE/NAME``: a Secret; the prefix form is ``k8s://NAMESPACE``.

    ``NAMESPACE`` is an RFC 1123 label, ``NAME`` an RFC 1123 subdomain, as the
    API server requires.
    """

    form = "k8s://NAMESPACE/NAME#KEY"
    incomplete = "expected NAMESPACE/NAME"

    def check(self, location: str) -> bool:
        segments = location.split("/") if location else []
        if not segments or len(segments) > 2:
            raise ValueError("expected NAMESPACE/NAME")
        if not _LABEL.fullmatch(segments[0]):
            raise ValueError(
                "NAMESPACE must be an RFC 1123 label (lower-case letters, digits, '-', <= 63)"
            )
        if len(segments) == 2 and not _SUBDOMAIN.fullmatch(segments[1]):
            raise ValueError(
                "NAME must be an RFC 1123 subdomain (lower-case letters, digits, '-', '.', <= 253)"
            )
        return len(segments) == 2


def _split(uri: StoreURI) -> tuple[str, str]:
    parts = uri.parts
    if len(parts) != 2:
        raise InvalidStoreURI(f"{uri}: expected k8s://NAMESPACE/NAME#KEY")
    return parts[0], parts[1]


class KubernetesSecretStore:
    """The ``k8s://`` store. ``repr`` shows the API server's URL, never a token."""

    system = "k8s"
    locations = KubernetesLocations()
    settings = ("proof_location",)

    def __init__(
        self,
        *,
        api_client: Any = None,
        host: str | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool | None = None,
        environ: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        field_manager: str = FIELD_MANAGER,
        proof_location: str | None = None,
    ) -> None:
        from kubernetes import client

        #: ``sibling`` (default): proofs in the Secret ``NAME-passgeni-proof``; ``inline``.
        self.proof_location = proof_location_option(proof_location, where="k8s://")
        self._owns_client = api_client is None
        if api_client is None:
            configuration = load_configuration(
                host=host,
                kubeconfig=kubeconfig,
                context=context,
                in_cluster=in_cluster,
                environ=environ,
            )
            api_client = client.ApiClient(configuration)
        self._api_client = api_client
        self.host = describe_host(api_client)
        self._api = SecretsApi(
            client.CoreV1Api(api_client),
            host=self.host,
            timeout=timeout,
            field_manager=field_manager,
        )

    @property
    def timeout(self) -> float:
        return self._api.timeout

    @property
    def field_manager(self) -> str:
        return self._api.field_manager

    @classmethod
    def from_uri(cls, uri: StoreURI, **options: Any) -> KubernetesSecretStore:
        if uri.scheme != "k8s":
            raise InvalidStoreURI(f"{uri} is not a k8s:// URI")
        return cls(**options)

    def __repr__(self) -> str:
        return f"KubernetesSecretStore(host={self.host!r})"

    def close(self) -> None:
        if self._owns_client:
            close = getattr(self._api_client, "close", None)
            if callable(close):
                close()

    # -- SecretStore --------------------------------------------------------------------------

    def _proof_of(
        self, namespace: str, name: str, obj: Mapping[str, Any] | None, key: str
    ) -> dict[str, str] | None:
        """The proof record of a Secret read, fetched only when it is needed to read ``key``."""
        if obj is None:
            return None
        data = decode_data(as_dict(obj.get("data")))
        meta_refs = annotation_refs(metadata_of(obj).get("annotations"))
        if not needs_proof(data, key, meta_refs) or len(name + "-passgeni-proof") > 253:
            return None
        return proof_record(self._api.get(namespace, proof_name(namespace, name)))

    def read(self, uri: StoreURI) -> StoredCredential | None:
        namespace, name = _split(uri)
        obj = self._api.get(namespace, name)
        if obj is None:
            return None
        found = records(uri, obj, uri.key, self._proof_of(namespace, name, obj, uri.key))
        record = found[0] if found else None
        return record if record is not None and record.password is not None else None

    def prepare(self, uri: StoreURI) -> WritePlan:
        namespace, name = _split(uri)
        obj = self._api.get(namespace, name)
        proof = None
        if self.proof_location == "sibling":
            # Reading it is the permission check possible before anything is certified.
            self._api.get(namespace, proof_name(namespace, name))
            proof = f"k8s://{namespace}/{proof_name(namespace, name)}"
        if obj is None:
            return WritePlan(
                uri=uri,
                current=None,
                next_version=None,
                extra={"exists": False, "annotations_bytes": 0, "data_bytes": 0},
                proof=proof,
            )
        if obj.get("immutable") is True:
            raise StoreConflict(
                f"k8s://{namespace}/{name}: the Secret is immutable; it cannot be written"
            )
        found = records(uri, obj, uri.key, self._proof_of(namespace, name, obj, uri.key))
        current = found[0] if found and found[0].password is not None else None
        meta = metadata_of(obj)
        annotations = as_dict(meta.get("annotations"))
        foreign = {k: v for k, v in annotations.items() if k not in ANNOTATION_NAMES.values()}
        data = as_dict(obj.get("data"))
        others = {k: v for k, v in data.items() if k not in credential_field_names(uri.key)}
        plan = WritePlan(
            uri=uri,
            current=current,
            next_version=None,
            precondition=str(meta.get("resourceVersion") or ""),
            extra={
                "exists": True,
                "annotations_bytes": annotations_size(foreign),
                "data_bytes": data_size(others),
            },
            proof=proof,
        )
        if plan.extra["annotations_bytes"] > MAX_ANNOTATIONS_BYTES - 1024:
            raise StoreLimitExceeded(
                f"k8s://{namespace}/{name}: the Secret's annotations take "
                f"{plan.extra['annotations_bytes']} bytes; Kubernetes allows "
                f"{MAX_ANNOTATIONS_BYTES} in total, leaving no room for the certificate references"
            )
        return plan

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        where = f"k8s://{plan.uri.location}"
        ours = annotations_for(refs)
        total = int(plan.extra.get("annotations_bytes", 0)) + annotations_size(ours)
        if total > MAX_ANNOTATIONS_BYTES:
            raise StoreLimitExceeded(
                f"{where}: the annotations would take {total} bytes; Kubernetes allows "
                f"{MAX_ANNOTATIONS_BYTES}"
            )
        # The password and binding key are short; the references are public.
        ours_data = len(refs.cert_id) + len(refs.cert_url) + 512
        if int(plan.extra.get("data_bytes", 0)) + ours_data > MAX_SECRET_DATA_BYTES:
            raise StoreLimitExceeded(
                f"{where}: the Secret's data would exceed Kubernetes' limit of "
                f"{MAX_SECRET_DATA_BYTES} bytes"
            )

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        uri = plan.uri
        namespace, name = _split(uri)
        where = f"k8s://{namespace}/{name}"
        proof = (
            encode_seed(credential.seed)
            if credential.seed is not None
            else encode_binding_key(credential.binding_key or b"")
        )
        secrets = (credential.password, b64(credential.password), proof, b64(proof))
        value = (
            clean_value_fields(None, uri.key, credential)
            if plan.proof is not None
            else credential_fields(uri.key, credential, refs)
        )
        fields = {k: b64(v) for k, v in value.items()}
        if not plan.extra.get("exists"):
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "annotations": annotations_for(refs),
                },
                "data": fields,
            }
            try:
                self._api.create(namespace, name, body, secrets=secrets)
            except StoreConflict:
                raise StoreConflict(
                    f"{where}: the Secret was created by another writer meanwhile; nothing written"
                ) from None
            return ""
        obj = self._api.get(namespace, name)
        if obj is None:
            raise StoreConflict(f"{where}: the Secret was deleted meanwhile; nothing written")
        version = str(metadata_of(obj).get("resourceVersion") or "")
        if plan.precondition and version != plan.precondition:
            raise StoreConflict(
                f"{where}: the Secret changed since it was read (resourceVersion "
                f"{plan.precondition} -> {version}); nothing written"
            )
        body = apply_intent(
            obj, data=fields, annotations=None, keys=self._our_keys(namespace, name)
        )
        try:
            self._api.apply(
                namespace, name, body, f"write Secret {namespace}/{name}", secrets=secrets
            )
        except StoreConflict:
            raise StoreConflict(
                f"{where}: the Secret changed since it was read (server-side apply "
                "precondition failed); nothing written"
            ) from None
        # An earlier credential's companions (its binding key) are removed once the new
        # value is in: server-side apply drops them too, but only for fields it owns.
        raw = obj.get("data")
        current: dict[str, Any] = raw if isinstance(raw, dict) else {}
        stale = [n for n in credential_field_names(uri.key) if n in current and n not in fields]
        if stale:
            self._api.remove_data(namespace, name, stale)
        return ""

    def _our_keys(self, namespace: str, name: str) -> list[str]:
        """The keys whose proof is in the proof record: their data fields are ours to apply."""
        if len(name + "-passgeni-proof") > 253:
            return []
        return proof_keys(proof_record(self._api.get(namespace, proof_name(namespace, name))))

    def write_proof(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> None:
        """The proof record's entry for the credential ``plan`` writes, before the value."""
        namespace, name = _split(plan.uri)
        current = self._api.get(namespace, proof_name(namespace, name))
        entry = ProofEntry.of(credential, refs.cert_id, refs.cert_url, plan.next_version)
        keep = plan.current.refs.cert_id if plan.current and plan.current.refs else None
        record = merge_proof(proof_record(current), plan.uri.key, entry, keep_cert=keep)
        write_proof_record(self._api, namespace, name, record, current)

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        namespace, name = _split(uri)
        ours = annotations_for(refs)
        keys = self._our_keys(namespace, name)
        for attempt in range(_CONFLICT_RETRIES):
            obj = self._api.get(namespace, name)
            if obj is None:
                raise StoreError(f"k8s://{namespace}/{name}: the Secret does not exist")
            body = apply_intent(obj, data={}, annotations=ours, keys=keys)
            try:
                self._api.apply(namespace, name, body, f"annotate Secret {namespace}/{name}")
                return
            except StoreConflict:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise

    def read_metadata(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret's ``metadata`` only (never its data), or None when it does not exist."""
        obj = self._api.get(namespace, name)
        return None if obj is None else metadata_of(obj)

    def merge_annotations(
        self, namespace: str, name: str, changes: Mapping[str, str | None]
    ) -> None:
        """Set (or, with ``None``, remove) annotations with a JSON merge patch.

        For annotations other parties own (e.g. removing a user's
        ``passgeni.ai/rotate`` request), where server-side apply, which only
        manages our own fields, cannot help. Never used for credentials.
        """
        self._api.merge_annotations(namespace, name, changes)

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        only_key = prefix.key if prefix.explicit_key else None
        parts = prefix.parts
        if len(parts) == 2:
            obj = self._api.get(parts[0], parts[1])
            if obj is None:
                raise StoreNotFound(f"{prefix}: no such Secret")
            key = only_key or prefix.key
            proof = self._proof_of(parts[0], parts[1], obj, key)
            yield from records(prefix.with_location(prefix.location), obj, only_key, proof)
            return
        if len(parts) != 1:
            raise InvalidStoreURI(f"{prefix}: expected k8s://NAMESPACE (or NAMESPACE/NAME)")
        namespace = parts[0]
        found = self._api.list_all(namespace)
        if not found and self._api.namespace_exists(namespace) is False:
            # Listing Secrets of a namespace that does not exist answers an empty list.
            raise StoreNotFound(f"k8s://{namespace}: no such namespace at {self._api.host}")
        proofs = {str(metadata_of(o).get("name")): o for o in found if is_proof(o)}
        for obj in sorted(found, key=lambda o: str(metadata_of(o).get("name") or "")):
            name = metadata_of(obj).get("name")
            if not isinstance(name, str) or is_proof(obj) or not holds_credentials(obj, prefix.key):
                continue
            uri = prefix.with_location(f"{namespace}/{name}", prefix.key)
            proof = proof_record(proofs.get(name + "-passgeni-proof"))
            yield from records(uri, obj, only_key, proof)
