"""The certificate's target names which Vault: address and namespace (issue #18, item 3).

``vault://secret/app/db`` exists in every Vault and every namespace; the target records the
store's address and namespace, and the judge reports a credential found in another one as
drifted. Certificates made before (no ``address`` in the target) keep verifying.
"""

from __future__ import annotations

from typing import Any

import pytest

from passgeni_core import parse_store_uri, provision_into_store, scan, verify_certificate
from passgeni_core.stores import store_target
from tests.support import OpenBaoServer
from tests.support.authority import Authority
from vault_plugin_helper.vault import VaultStore


def _store(bao: OpenBaoServer, **env: str) -> VaultStore:
    return VaultStore(environ={"VAULT_ADDR": bao.url, "VAULT_TOKEN": bao.token, **env})


def _copy(src: VaultStore, dst: VaultStore, path: str) -> None:
    """What a person copying a secret does: the value, the custom metadata and the proof
    record, verbatim."""
    proof = src._client.secrets.kv.v2.read_secret_version(
        path=f"passgeni-proof/{path}", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    dst._client.secrets.kv.v2.create_or_update_secret(
        path=f"passgeni-proof/{path}", secret=proof, mount_point="secret"
    )
    data: dict[str, Any] = src._client.secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )["data"]
    meta = src._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
    dst._client.secrets.kv.v2.create_or_update_secret(
        path=path, secret=data["data"], mount_point="secret"
    )
    dst._client.secrets.kv.v2.update_metadata(
        path=path, mount_point="secret", custom_metadata=meta["data"]["custom_metadata"]
    )


def test_the_target_records_address_and_namespace(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    namespace = f"ns{uid}"
    root = openbao.hvac_client()
    root.adapter.post(f"/v1/sys/namespaces/{namespace}")
    in_ns = _store(openbao, VAULT_NAMESPACE=namespace)
    in_ns._client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    uri = f"vault://secret/{uid}/db#password"
    client = authority.client()
    result = provision_into_store(client, in_ns, uri, "soc2")
    assert result.provisioned is not None
    claims = verify_certificate(
        result.provisioned.token, client.jwks(), issuer=client.issuer
    ).claims
    assert claims.target is not None
    assert claims.target.to_dict() == {
        "system": "vault",
        "path": f"secret/{uid}/db#password",
        "version": "1",
        "address": openbao.url,
        "namespace": namespace,
    }
    assert [e.status for e in scan(client, [uri], store_options=_opts(in_ns)).entries] == ["valid"]
    # The same secret copied, verbatim, into the root namespace of the same Vault.
    in_root = _store(openbao)
    _copy(in_ns, in_root, f"{uid}/db")
    entry = scan(client, [uri], store_options=_opts(in_root)).entries[0]
    assert entry.status == "drifted" and "target_mismatch" in entry.reasons
    assert f"certified in namespace {namespace}, found in (root)" in entry.detail
    # The same Vault through another address is another store as far as the certificate says.
    other = VaultStore(
        environ={
            "VAULT_ADDR": openbao.url.replace("127.0.0.1", "localhost"),
            "VAULT_TOKEN": openbao.token,
            "VAULT_NAMESPACE": namespace,
        }
    )
    entry = scan(client, [uri], store_options=_opts(other)).entries[0]
    assert entry.status == "drifted" and f"certified in the store at {openbao.url}" in entry.detail


def _opts(store: VaultStore) -> dict[str, dict[str, Any]]:
    return {"vault": {"client": store._client}}


def test_certificates_without_address_keep_verifying(
    openbao: OpenBaoServer, authority: Authority, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store that records no scope certifies as before issue #18: system, path, version.
    legacy = _store(openbao)
    monkeypatch.setattr(legacy, "scope", None)
    uri = f"vault://secret/{uid}/old#password"
    client = authority.client()
    result = provision_into_store(client, legacy, uri, "soc2")
    target = store_target(legacy, parse_store_uri(uri), "1").to_dict()
    assert "address" not in target and "namespace" not in target
    assert result.provisioned is not None
    claims = verify_certificate(
        result.provisioned.token, client.jwks(), issuer=client.issuer
    ).claims
    assert claims.target is not None and claims.target.address is None
    # Read by today's store, which knows its scope: still valid.
    current = _store(openbao)
    assert current.scope is not None and current.scope.address == openbao.url
    assert [e.status for e in scan(client, [uri], store_options=_opts(current)).entries] == [
        "valid"
    ]
