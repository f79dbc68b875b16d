"""The vault:// backend against a real OpenBao server (Vault API), with the real authority."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hvac
import pytest

from passgeni_core import (
    CertificateRefs,
    StoreConflict,
    StoreError,
    StoreLimitExceeded,
    decode_seed,
    open_store,
    parse_store_uri,
    provision_into_store,
    verify_certificate,
    verify_provenance,
)
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.support import OpenBaoServer
from tests.support.proofs import vault_proof
from vault_plugin_helper.vault import VaultStore

pytestmark = pytest.mark.usefixtures("vault_env")


def kv_read(bao: OpenBaoServer, path: str) -> dict[str, Any]:
    result: dict[str, Any] = bao.hvac_client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )["data"]
    return result


def kv_meta(bao: OpenBaoServer, path: str) -> dict[str, Any]:
    result: dict[str, Any] = bao.hvac_client().secrets.kv.v2.read_secret_metadata(
        path=path, mount_point="secret"
    )["data"]
    return result


def test_round_trip_credential_and_certificate_refs(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    uri = f"vault://secret/{uid}/db#db_password"
    store = open_store(uri)  # found by scheme, configured from VAULT_ADDR/VAULT_TOKEN
    assert isinstance(store, VaultStore)
    client = authority.client()
    result = provision_into_store(client, store, uri, "soc2", label="db")
    assert result.outcome == "created" and result.version == "1"

    # What an auditor or an app sees in Vault itself.
    stored = kv_read(openbao, f"{uid}/db")
    data, version = stored["data"], stored["metadata"]["version"]
    assert version == 1
    # The value workloads read holds the credential's key only; the proof is beside it.
    assert set(data) == {"db_password"}
    proof = vault_proof(openbao.hvac_client(), f"{uid}/db", "db_password")
    assert proof["cert_id"] == result.cert_id and proof["cert_url"] == result.cert_url
    assert proof["version"] == "1"
    meta = kv_meta(openbao, f"{uid}/db")["custom_metadata"]
    assert meta == {
        "passgeni-cert-url": result.cert_url,
        "passgeni-cert-id": result.cert_id,
        "passgeni-standard": "SOC2",
        "passgeni-expires-at": result.public_dict()["expires_at"],
        "passgeni-kv-version": "1",
    }
    # The certificate names this location and version, and binds this value.
    record = client.get_certificate(result.cert_id)
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    target = cert.claims.target
    assert target is not None
    assert (target.system, target.path, target.version) == (
        "vault",
        f"secret/{uid}/db#db_password",
        "1",
    )
    # The stored seed re-derives the stored value: it is exactly the generated one.
    verify_provenance(cert, data["db_password"], decode_seed(proof["seed"]))
    # And the backend reads back the same.
    back = store.read(parse_store_uri(uri))
    assert back is not None and back.refs is not None and back.metadata_refs is not None
    assert back.version == "1" and back.refs.cert_id == result.cert_id
    assert back.metadata_refs.cert_id == result.cert_id
    assert back.password == data["db_password"]


def test_other_fields_and_foreign_metadata_keys_are_kept(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    hv = openbao.hvac_client()
    path = f"{uid}/app"
    hv.secrets.kv.v2.create_or_update_secret(
        path=path, mount_point="secret", secret={"username": "app", "password": "old-one"}
    )
    hv.secrets.kv.v2.update_metadata(
        path=path, mount_point="secret", custom_metadata={"owner": "team-a", "ticket": "OPS-1"}
    )
    store = open_store("vault://secret")
    client = authority.client()
    result = provision_into_store(client, store, f"vault://secret/{path}#api_token", "nist-800-63b")
    assert result.version == "2"
    data = kv_read(openbao, path)["data"]
    assert data["username"] == "app" and data["password"] == "old-one"
    assert set(data) == {"username", "password", "api_token"}
    assert vault_proof(hv, path, "api_token")["cert_id"] == result.cert_id
    meta = kv_meta(openbao, path)["custom_metadata"]
    assert meta["owner"] == "team-a" and meta["ticket"] == "OPS-1"
    assert meta["passgeni-cert-id"] == result.cert_id and meta["passgeni-kv-version"] == "2"
    # Another team adds a key later; our next metadata write leaves it too.
    hv.adapter.request(
        "PATCH",
        f"/v1/secret/metadata/{path}",
        json={"custom_metadata": {"cost-center": "42"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    store.write_metadata(parse_store_uri(f"vault://secret/{path}#api_token"), result.refs)
    meta = kv_meta(openbao, path)["custom_metadata"]
    assert {"owner", "ticket", "cost-center", "passgeni-cert-id"} <= set(meta)


def _limited_token(bao: OpenBaoServer, name: str, metadata_caps: list[str]) -> str:
    hv = bao.hvac_client()
    policy = f"""
path "secret/data/{name}/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/data/passgeni-proof/{name}/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{name}/*" {{ capabilities = {json.dumps(metadata_caps)} }}
path "sys/*" {{ capabilities = ["deny"] }}
"""
    hv.sys.create_or_update_policy(name=name, policy=policy)
    token: str = hv.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
    return token


def test_metadata_merge_falls_back_to_read_merge_write_without_patch(
    openbao: OpenBaoServer, authority: Authority, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token allowed to read and update metadata, but without the "patch" capability.
    token = _limited_token(openbao, uid, ["read", "update", "create", "list"])
    hv = openbao.hvac_client()
    hv.secrets.kv.v2.update_metadata(
        path=f"{uid}/x", mount_point="secret", custom_metadata={"owner": "team-b"}
    )
    monkeypatch.setenv("VAULT_TOKEN", token)
    store = open_store("vault://secret")
    result = provision_into_store(authority.client(), store, f"vault://secret/{uid}/x", "soc2")
    meta = kv_meta(openbao, f"{uid}/x")["custom_metadata"]
    assert meta["owner"] == "team-b" and meta["passgeni-cert-id"] == result.cert_id


def test_metadata_refused_then_rerun_completes(
    openbao: OpenBaoServer, authority: Authority, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing lost: the value (with its refs) is stored; a re-run only completes the metadata."""
    token = _limited_token(openbao, uid, ["read", "update", "patch", "list"])
    uri = f"vault://secret/{uid}/svc"
    monkeypatch.setenv("VAULT_TOKEN", token)
    client = authority.client()

    def narrow(step: str) -> None:
        # The policy changes between the value write and the metadata write (prepare
        # checks the capabilities, so a token refused from the start gets no certificate).
        if step == "metadata":
            _limited_token(openbao, uid, ["read", "list"])

    with pytest.raises(StoreError) as info:
        provision_into_store(client, open_store(uri), uri, "soc2", before_write=narrow)
    message = info.value.message
    assert "the credential is stored (version 1" in message and "re-run" in message
    cert_id = vault_proof(openbao.hvac_client(), f"{uid}/svc")["cert_id"]
    assert client.get_certificate(cert_id).status == "valid"  # not revoked: it is in use
    assert not kv_meta(openbao, f"{uid}/svc").get("custom_metadata")

    monkeypatch.setenv("VAULT_TOKEN", openbao.token)
    again = provision_into_store(client, open_store(uri), uri, "soc2")
    assert again.outcome == "repaired" and again.cert_id == cert_id and again.version == "1"
    assert kv_read(openbao, f"{uid}/svc")["metadata"]["version"] == 1  # nothing regenerated
    assert kv_meta(openbao, f"{uid}/svc")["custom_metadata"]["passgeni-cert-id"] == cert_id
    third = provision_into_store(client, open_store(uri), uri, "soc2")
    assert third.outcome == "unchanged"


def test_metadata_key_limit_refused_before_anything_is_certified(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    hv = openbao.hvac_client()
    foreign = {f"team-key-{i:02d}": "v" for i in range(60)}
    hv.secrets.kv.v2.update_metadata(
        path=f"{uid}/full", mount_point="secret", custom_metadata=foreign
    )
    client = authority.client()
    before = client.audit(page_size=1).total
    with pytest.raises(StoreLimitExceeded) as info:
        provision_into_store(
            client, open_store("vault://secret"), f"vault://secret/{uid}/full", "soc2"
        )
    assert "64" in info.value.message
    assert client.audit(page_size=1).total == before  # no certificate was issued
    assert len(kv_meta(openbao, f"{uid}/full")["custom_metadata"]) == 60


def test_metadata_value_limits() -> None:
    store = VaultStore(environ={"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "x"})
    from passgeni_core import WritePlan  # check() needs no server

    uri = parse_store_uri("vault://secret/a/b")
    plan_ = WritePlan(uri=uri, current=None, next_version="1", precondition="0")
    ok = CertificateRefs(cert_id="pg_1", cert_url="https://a.example/cert/pg_1", version="1")
    store.check(plan_, ok)
    with pytest.raises(StoreLimitExceeded, match="512"):
        store.check(plan_, CertificateRefs(cert_id="pg_1", cert_url="https://a/" + "x" * 600))
    # 512 bytes, not characters: 200 three-byte characters are 600 bytes.
    with pytest.raises(StoreLimitExceeded, match="bytes"):
        store.check(plan_, CertificateRefs(cert_id="€" * 200, cert_url="https://a/cert/1"))


def test_check_and_set_conflict_revokes_and_keeps_the_other_writer(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    hv = openbao.hvac_client()
    path = f"{uid}/race"

    def other_writer(step: str) -> None:
        if step == "write":
            hv.secrets.kv.v2.create_or_update_secret(
                path=path, mount_point="secret", secret={"password": "theirs"}
            )

    client = authority.client()
    with pytest.raises(StoreConflict) as info:
        provision_into_store(
            client,
            open_store("vault://secret"),
            f"vault://secret/{path}",
            "soc2",
            before_write=other_writer,
        )
    message = info.value.message
    assert "was revoked (reason: not stored)" in message
    cert_id = message.split("certificate ")[1].split(" ")[0]
    record = client.get_certificate(cert_id)
    assert record.status == "revoked" and record.revocation_reason == "not stored"
    assert kv_read(openbao, path)["data"] == {"password": "theirs"}


def test_connection_from_the_usual_environment(
    openbao: OpenBaoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(StoreError, match="VAULT_TOKEN") as info:
        open_store("vault://secret/a/b")
    assert openbao.token not in str(info.value)
    # The token helper file of `vault login`.
    (tmp_path / ".vault-token").write_text(openbao.token + "\n")
    store = open_store("vault://secret/a/b")
    assert openbao.token not in repr(store) and openbao.url in repr(store)
    assert store.read(parse_store_uri("vault://secret/nothing/here")) is None
    # Explicit environ mapping, and VAULT_NAMESPACE is sent as the header.
    client = VaultStore(
        environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": "abc", "VAULT_NAMESPACE": "ns1"}
    )._client
    assert client.adapter.namespace == "ns1"


def test_store_unavailable_is_a_clear_error(authority: Authority, uid: str) -> None:
    store = VaultStore(environ={"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "s3cr3t-tok"})
    client = authority.client()
    before = client.audit(page_size=1).total
    from passgeni_core import StoreUnavailable

    with pytest.raises(StoreUnavailable) as info:
        provision_into_store(client, store, f"vault://secret/{uid}/a", "soc2")
    assert "s3cr3t-tok" not in str(info.value) and "127.0.0.1:9" in str(info.value)
    assert client.audit(page_size=1).total == before


def test_listing_walks_folders(openbao: OpenBaoServer, authority: Authority, uid: str) -> None:
    hv = openbao.hvac_client()
    store = open_store("vault://secret")
    client = authority.client()
    provision_into_store(client, store, f"vault://secret/{uid}/a/one", "soc2")
    provision_into_store(client, store, f"vault://secret/{uid}/a/deep/two#pw", "soc2")
    hv.secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/plain", mount_point="secret", secret={"password": "plain-secret-value"}
    )
    found = {
        str(c.uri): c
        for c in store.list(parse_store_uri(f"vault://secret/{uid}", allow_prefix=True))
    }
    assert set(found) == {
        f"vault://secret/{uid}/a/one#password",
        f"vault://secret/{uid}/a/deep/two#pw",
        f"vault://secret/{uid}/plain#password",
    }
    assert found[f"vault://secret/{uid}/plain#password"].refs is None
    plain = found[f"vault://secret/{uid}/plain#password"]
    assert plain.password == "plain-secret-value"
    assert "plain-secret-value" not in repr(plain) + str(plain)


def test_kv_version_1_mount_is_refused_before_certification(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    hv = openbao.hvac_client()
    hv.sys.enable_secrets_engine("kv", path=f"kv1{uid}", options={"version": "1"})
    client = authority.client()
    before = client.audit(page_size=1).total
    with pytest.raises(StoreError, match="not a KV version 2 mount"):
        provision_into_store(client, open_store("vault://x/y"), f"vault://kv1{uid}/app/db", "soc2")
    assert client.audit(page_size=1).total == before
    with pytest.raises(hvac.exceptions.InvalidPath):  # nothing was written there
        hv.adapter.request("LIST", f"/v1/kv1{uid}/")


def test_debug_logging_never_shows_a_secret(
    openbao: OpenBaoServer, authority: Authority, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = authority.client()
    store = open_store("vault://secret")
    result = provision_into_store(client, store, f"vault://secret/{uid}/log", "soc2")
    assert provision_into_store(client, store, f"vault://secret/{uid}/log", "soc2").outcome == (
        "unchanged"
    )
    assert "urllib3" in caplog.text or "127.0.0.1" in caplog.text
    assert result.credential is not None
    for secret in (result.credential.password, openbao.token):
        assert secret not in caplog.text


def test_an_inline_credential_proves_scans_and_is_migrated_on_rotation(
    openbao: OpenBaoServer, authority: Authority, uid: str
) -> None:
    """A credential stored before proof records (seed and references inside the value)."""
    from passgeni_core import scan
    from passgeni_core.workflows import rotate

    uri = f"vault://secret/{uid}/legacy#password"
    client = authority.client()
    old_store = VaultStore(
        environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.token}, proof_location="inline"
    )
    made = provision_into_store(client, old_store, uri, "soc2")
    data = kv_read(openbao, f"{uid}/legacy")["data"]
    assert set(data) == {
        "password",
        "password.passgeni-seed",
        "password.passgeni-cert-id",
        "password.passgeni-cert-url",
    }
    store = open_store(uri)  # today's default: sibling proof records
    current = store.read(parse_store_uri(uri))
    assert current is not None and current.proof_layout == "inline"
    report = scan(client, [uri])
    assert report.ok and [e.status for e in report.entries] == ["valid"]
    rotated = rotate(client, store, uri, "soc2")
    data = kv_read(openbao, f"{uid}/legacy")["data"]
    assert set(data) == {"password"}  # migrated: the old in-payload fields are gone
    assert vault_proof(openbao.hvac_client(), f"{uid}/legacy")["cert_id"] == rotated.cert_id
    assert client.get_certificate(made.cert_id).status == "revoked"
    report = scan(client, [uri])
    assert report.ok and [e.status for e in report.entries] == ["valid"]
