"""Reading PassGeni's proof records straight from the real servers (the tests' view).

The seed and certificate references of a stored credential live in a sibling of the
secret (see ``passgeni_core.stores``' proof records); these return the newest entry for
a key, as the JSON the store wrote: ``{"cert_id", "cert_url", "version", "seed", ...}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def _newest(record: dict[str, Any], key: str) -> dict[str, Any]:
    entries = json.loads(record[f"{key}.passgeni-proof"])
    assert isinstance(entries, list) and entries, record.keys()
    entry: dict[str, Any] = entries[0]
    return entry


def vault_proof(hv: Any, path: str, key: str = "password", mount: str = "secret") -> dict[str, Any]:
    """The newest entry of ``MOUNT/passgeni-proof/PATH`` for ``key`` (hvac client ``hv``)."""
    answer = hv.secrets.kv.v2.read_secret_version(
        path=f"passgeni-proof/{path}", mount_point=mount, raise_on_deleted_version=True
    )
    return _newest(answer["data"]["data"], key)


def aws_proof(sm: Any, name: str, key: str = "password") -> dict[str, Any]:
    """The newest entry of the secret ``passgeni-proof/NAME`` for ``key`` (boto3 client)."""
    answer = sm.get_secret_value(SecretId=f"passgeni-proof/{name}", VersionStage="AWSCURRENT")
    return _newest(json.loads(answer["SecretString"]), key)


def k8s_proof(core: Any, namespace: str, name: str, key: str = "password") -> dict[str, Any]:
    """The newest entry of the Secret ``NAME-passgeni-proof`` for ``key`` (CoreV1Api)."""
    obj = core.read_namespaced_secret(f"{name}-passgeni-proof", namespace)
    data = {k: base64.b64decode(v).decode() for k, v in (obj.data or {}).items()}
    return _newest(data, key)


def k8s_proof_or_none(
    core: Any, namespace: str, name: str, key: str = "password"
) -> dict[str, Any] | None:
    """As :func:`k8s_proof`, None while the record or the key's entry does not exist."""
    from kubernetes.client.exceptions import ApiException

    try:
        return k8s_proof(core, namespace, name, key)
    except (ApiException, KeyError):
        return None


def aws_proof_for(
    sm: Any, secret_id: str, version: str | None = None, key: str = "password"
) -> dict[str, Any]:
    """The entry of the secret ``secret_id`` (name or ARN) written for ``version`` (a
    VersionId, the rotation token), else the newest."""
    name = sm.describe_secret(SecretId=secret_id)["Name"]
    answer = sm.get_secret_value(SecretId=f"passgeni-proof/{name}", VersionStage="AWSCURRENT")
    entries = json.loads(json.loads(answer["SecretString"])[f"{key}.passgeni-proof"])
    for entry in entries:
        if version is None or entry["version"] == version:
            found: dict[str, Any] = entry
            return found
    raise AssertionError(f"no proof entry for version {version} of {name}")


def inline_fields(entry: dict[str, Any], key: str = "password") -> dict[str, str]:
    """A proof entry as the inline layout's fields (``KEY.passgeni-seed``, ``-cert-id``, ...)."""
    return {
        f"{key}.passgeni-seed": entry["seed"],
        f"{key}.passgeni-cert-id": entry["cert_id"],
        f"{key}.passgeni-cert-url": entry["cert_url"],
    }


def k8s_cert_id(core: Any, namespace: str, name: str, key: str = "password") -> str | None:
    """The certificate id of the credential ``key`` of a Secret, as the store reads it (the
    proof record's entry that belongs to the value), None while there is none."""
    from k8s_operator_hooks.store import KubernetesSecretStore
    from passgeni_core.stores import parse_store_uri

    store = KubernetesSecretStore(api_client=core.api_client)
    got = store.read(parse_store_uri(f"k8s://{namespace}/{name}#{key}"))
    return got.refs.cert_id if got is not None and got.refs is not None else None
