"""Kubernetes Secret backend for ``k8s://NAMESPACE/NAME#KEY``.

Connection: kubeconfig or in-cluster config, as ``kubectl`` (see
:mod:`k8s_operator_hooks._kube`); options ``api_client=`` (an existing
``kubernetes.client.ApiClient``, not closed by the store), ``host=`` (a plain
base URL), ``kubeconfig=``, ``context=``, ``in_cluster=``, ``environ=``,
``timeout=`` (seconds per request, default 30). The ``kubernetes`` package is
imported lazily, when the store is opened.

What is stored in the Secret (``data`` values are base64, as Kubernetes requires)::

    data[KEY]                            the password
    data[KEY.passgeni-binding-key]       the binding key
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

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from passgeni_core import (
    Credential,
    InvalidStoreURI,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    StoreUnavailable,
    encode_binding_key,
)
from passgeni_core.stores import (
    METADATA_KEYS,
    CertificateRefs,
    StoredCredential,
    StoreURI,
    WritePlan,
    certified_keys,
    credential_field_names,
    credential_fields,
    stored_credentials,
)

from ._kube import describe_host, load_configuration

__all__ = [
    "ANNOTATION_PREFIX",
    "FIELD_MANAGER",
    "KubernetesLocations",
    "KubernetesSecretStore",
    "annotation_refs",
    "annotations_for",
]

FIELD_MANAGER = "passgeni"
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
DEFAULT_TIMEOUT = 30.0
_APPLY = "application/apply-patch+yaml"
_CONFLICT_RETRIES = 3


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


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decode_data(data: Mapping[str, Any] | None) -> dict[str, str]:
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


def _status_message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str) or not body:
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(status, dict):
        return ""
    return str(status.get("message") or status.get("reason") or "")


def _scrub(text: str, secrets: tuple[str, ...], limit: int = 200) -> str:
    out = " ".join(text.split())
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out[:limit]


def _annotations_size(annotations: Mapping[str, Any]) -> int:
    return sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())


def _data_size(data: Mapping[str, Any]) -> int:
    """Decoded size of a Secret's data (what the API server's 1 MiB limit counts)."""
    total = 0
    for value in data.values():
        if isinstance(value, str):
            total += len(value) * 3 // 4
    return total


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


class KubernetesSecretStore:
    """The ``k8s://`` store. ``repr`` shows the API server's URL, never a token."""

    system = "k8s"
    locations = KubernetesLocations()

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
    ) -> None:
        from kubernetes import client

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
        self._core = client.CoreV1Api(api_client)
        self.host = describe_host(api_client)
        self.timeout = timeout
        self.field_manager = field_manager

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

    # -- calls ------------------------------------------------------------------------------

    def _call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        missing_ok: bool = False,
        secrets: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """One API call with errors mapped to StoreError subclasses; None on 404 if missing_ok."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config import ConfigException

        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 404 and missing_ok:
                return None
            detail = _scrub(_status_message(exc.body) or str(exc.reason or ""), secrets)
            where = f"the Kubernetes API at {self.host}"
            if status == 409:
                raise StoreConflict(f"{what}: {detail or 'conflict'} (HTTP 409)") from None
            if status in (401, 403):
                raise StoreError(
                    f"{what}: permission denied by {where} (HTTP {status}: {detail})"
                ) from None
            if status == 422 and ("too long" in detail.lower() or "at most" in detail.lower()):
                raise StoreLimitExceeded(f"{what}: refused by {where}: {detail}") from None
            if status == 429 or status >= 500 or status == 0:
                raise StoreUnavailable(
                    f"{what}: {where} answered HTTP {status} ({detail})"
                ) from None
            raise StoreError(f"{what}: {where} answered HTTP {status} ({detail})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(
                f"{what}: cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})"
            ) from None
        except ConfigException as exc:  # e.g. an expired exec/auth-provider credential
            raise StoreError(
                f"{what}: Kubernetes credentials: {_scrub(str(exc), secrets)}"
            ) from None

    def _get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret as JSON (a plain dict), or None when it does not exist."""
        response = self._call(
            f"read Secret {namespace}/{name}",
            self._core.read_namespaced_secret,
            name,
            namespace,
            missing_ok=True,
            _preload_content=False,
        )
        if response is None:
            return None
        return self._json(response, f"read Secret {namespace}/{name}")

    def _json(self, response: Any, what: str) -> dict[str, Any]:
        try:
            obj = json.loads(response.data)
        except (ValueError, TypeError):
            raise StoreError(f"{what}: the Kubernetes API answered something not JSON") from None
        if not isinstance(obj, dict):
            raise StoreError(f"{what}: the Kubernetes API answered something not an object")
        return obj

    @staticmethod
    def _split(uri: StoreURI) -> tuple[str, str]:
        parts = uri.parts
        if len(parts) != 2:
            raise InvalidStoreURI(f"{uri}: expected k8s://NAMESPACE/NAME#KEY")
        return parts[0], parts[1]

    @staticmethod
    def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
        return _dict(obj.get("metadata"))

    def _records(
        self, uri: StoreURI, obj: Mapping[str, Any], only_key: str | None
    ) -> list[StoredCredential]:
        meta = self._meta(obj)
        data = _dict(obj.get("data"))
        return stored_credentials(
            uri,
            _decode_data(data),
            version=None,
            metadata_refs=annotation_refs(meta.get("annotations")),
            only_key=only_key,
        )

    def _intent(
        self,
        obj: Mapping[str, Any],
        *,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """The full server-side-apply body of the ``passgeni`` manager (see the module doc).

        ``data`` (base64 values) is laid over the certified keys' current fields;
        ``annotations`` replaces our annotations (None keeps the current ones).
        """
        meta = self._meta(obj)
        current = _dict(obj.get("data"))
        fields: dict[str, str] = {}
        for key in certified_keys(_decode_data(current)):
            for name in credential_field_names(key):
                if isinstance(current.get(name), str):
                    fields[name] = current[name]
        fields.update(data)
        if annotations is None:
            existing = _dict(meta.get("annotations"))
            annotations = {
                k: v for k, v in existing.items() if k in ANNOTATION_NAMES.values() and v
            }
        metadata: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
        if annotations:
            metadata["annotations"] = dict(annotations)
        if meta.get("resourceVersion"):
            metadata["resourceVersion"] = meta["resourceVersion"]
        return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": fields}

    def _apply(
        self, namespace: str, name: str, body: Mapping[str, Any], what: str, **kw: Any
    ) -> Any:
        return self._call(
            what,
            self._core.patch_namespaced_secret,
            name,
            namespace,
            body,
            field_manager=self.field_manager,
            force=True,
            _content_type=_APPLY,
            _preload_content=False,
            **kw,
        )

    # -- SecretStore --------------------------------------------------------------------------

    def read(self, uri: StoreURI) -> StoredCredential | None:
        namespace, name = self._split(uri)
        obj = self._get(namespace, name)
        if obj is None:
            return None
        records = self._records(uri, obj, uri.key)
        record = records[0] if records else None
        return record if record is not None and record.password is not None else None

    def prepare(self, uri: StoreURI) -> WritePlan:
        namespace, name = self._split(uri)
        obj = self._get(namespace, name)
        if obj is None:
            return WritePlan(
                uri=uri,
                current=None,
                next_version=None,
                extra={"exists": False, "annotations_bytes": 0, "data_bytes": 0},
            )
        if obj.get("immutable") is True:
            raise StoreConflict(
                f"k8s://{namespace}/{name}: the Secret is immutable; it cannot be written"
            )
        records = self._records(uri, obj, uri.key)
        current = records[0] if records and records[0].password is not None else None
        meta = self._meta(obj)
        annotations = _dict(meta.get("annotations"))
        foreign = {k: v for k, v in annotations.items() if k not in ANNOTATION_NAMES.values()}
        data = _dict(obj.get("data"))
        others = {k: v for k, v in data.items() if k not in credential_field_names(uri.key)}
        plan = WritePlan(
            uri=uri,
            current=current,
            next_version=None,
            precondition=str(meta.get("resourceVersion") or ""),
            extra={
                "exists": True,
                "annotations_bytes": _annotations_size(foreign),
                "data_bytes": _data_size(others),
            },
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
        total = int(plan.extra.get("annotations_bytes", 0)) + _annotations_size(ours)
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
        namespace, name = self._split(uri)
        where = f"k8s://{namespace}/{name}"
        binding = encode_binding_key(credential.binding_key)
        secrets = (credential.password, _b64(credential.password), binding, _b64(binding))
        fields = {k: _b64(v) for k, v in credential_fields(uri.key, credential, refs).items()}
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
                self._call(
                    f"create Secret {namespace}/{name}",
                    self._core.create_namespaced_secret,
                    namespace,
                    body,
                    field_manager=self.field_manager,
                    secrets=secrets,
                    _preload_content=False,
                )
            except StoreConflict:
                raise StoreConflict(
                    f"{where}: the Secret was created by another writer meanwhile; nothing written"
                ) from None
            return ""
        obj = self._get(namespace, name)
        if obj is None:
            raise StoreConflict(f"{where}: the Secret was deleted meanwhile; nothing written")
        version = str(self._meta(obj).get("resourceVersion") or "")
        if plan.precondition and version != plan.precondition:
            raise StoreConflict(
                f"{where}: the Secret changed since it was read (resourceVersion "
                f"{plan.precondition} -> {version}); nothing written"
            )
        body = self._intent(obj, data=fields, annotations=None)
        try:
            self._apply(namespace, name, body, f"write Secret {namespace}/{name}", secrets=secrets)
        except StoreConflict:
            raise StoreConflict(
                f"{where}: the Secret changed since it was read (server-side apply "
                "precondition failed); nothing written"
            ) from None
        return ""

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        namespace, name = self._split(uri)
        ours = annotations_for(refs)
        for attempt in range(_CONFLICT_RETRIES):
            obj = self._get(namespace, name)
            if obj is None:
                raise StoreError(f"k8s://{namespace}/{name}: the Secret does not exist")
            body = self._intent(obj, data={}, annotations=ours)
            try:
                self._apply(namespace, name, body, f"annotate Secret {namespace}/{name}")
                return
            except StoreConflict:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise

    def read_metadata(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret's ``metadata`` only (never its data), or None when it does not exist."""
        obj = self._get(namespace, name)
        return None if obj is None else self._meta(obj)

    def merge_annotations(
        self, namespace: str, name: str, changes: Mapping[str, str | None]
    ) -> None:
        """Set (or, with ``None``, remove) annotations with a JSON merge patch.

        For annotations other parties own (e.g. removing a user's
        ``passgeni.ai/rotate`` request), where server-side apply, which only
        manages our own fields, cannot help. Never used for credentials.
        """
        self._call(
            f"annotate Secret {namespace}/{name}",
            self._core.patch_namespaced_secret,
            name,
            namespace,
            {"metadata": {"annotations": dict(changes)}},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        only_key = prefix.key if prefix.explicit_key else None
        parts = prefix.parts
        if len(parts) == 2:
            obj = self._get(parts[0], parts[1])
            if obj is not None:
                yield from self._records(prefix.with_location(prefix.location), obj, only_key)
            return
        if len(parts) != 1:
            raise InvalidStoreURI(f"{prefix}: expected k8s://NAMESPACE (or NAMESPACE/NAME)")
        namespace = parts[0]
        token: str | None = None
        found: list[dict[str, Any]] = []
        while True:
            kwargs: dict[str, Any] = {"limit": 200, "_preload_content": False}
            if token:
                kwargs["_continue"] = token
            response = self._call(
                f"list Secrets in {namespace}",
                self._core.list_namespaced_secret,
                namespace,
                **kwargs,
            )
            page = self._json(response, f"list Secrets in {namespace}")
            items = page.get("items")
            found.extend(
                i for i in (items if isinstance(items, list) else []) if isinstance(i, dict)
            )
            meta = _dict(page.get("metadata"))
            token = meta.get("continue") or None
            if not token:
                break
        for obj in sorted(found, key=lambda o: str(self._meta(o).get("name") or "")):
            name = self._meta(obj).get("name")
            if not isinstance(name, str) or not self._relevant(obj, prefix.key):
                continue
            uri = prefix.with_location(f"{namespace}/{name}", prefix.key)
            yield from self._records(uri, obj, only_key)

    @classmethod
    def _relevant(cls, obj: Mapping[str, Any], key: str) -> bool:
        """Whether a Secret holds a credential to report (service-account tokens, TLS... do not).

        Listed: Secrets with certified keys, with passgeni annotations (any
        spelling, including ``passgeni.ai/preset``), or with the scanned key
        (default ``password``) in their data.
        """
        data = _dict(obj.get("data"))
        if key in data or any(isinstance(n, str) and ".passgeni-" in n for n in data):
            return True
        annotations = cls._meta(obj).get("annotations")
        return isinstance(annotations, dict) and any(
            isinstance(n, str) and (n.startswith(ANNOTATION_PREFIX) or n.startswith(LEGACY_PREFIX))
            for n in annotations
        )
