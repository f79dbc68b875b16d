"""The k8s:// backend against the kmock Kubernetes emulator, with the real authority.

The emulator tolerates server-side apply only as a JSON merge and keeps no
resourceVersion (see tests/support/kube.py); these tests check what it can show:
the round trip, create-if-absent, that other data keys and other controllers'
annotations survive, idempotency, legacy annotations and error mapping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from k8s_operator_hooks.store import KubernetesSecretStore, annotation_refs
from passgeni_core import (
    StoreConflict,
    StoreError,
    StoreUnavailable,
    decode_seed,
    open_store,
    parse_store_uri,
    provision_into_store,
    verify_certificate,
    verify_provenance,
)
from passgeni_core.workflows import rotate
from tests.integration.k8s_operator_hooks.conftest import Authority, make_secret, read_secret
from tests.support import KubeEmulator, free_port
from tests.support.proofs import k8s_proof

pytestmark = pytest.mark.usefixtures("kubeconfig")


def test_round_trip_credential_and_certificate_refs(
    core: Any, authority: Authority, namespace: str
) -> None:
    uri = f"k8s://{namespace}/db-creds#db_password"
    store = open_store(uri)  # found by scheme, configured from $KUBECONFIG
    assert isinstance(store, KubernetesSecretStore)
    client = authority.client()
    result = provision_into_store(client, store, uri, "soc2", label="db")
    assert result.outcome == "created"

    secret = read_secret(core, namespace, "db-creds")
    data = secret["data"]
    # What envFrom or a volume carries: the credential only; the proof is beside it.
    assert set(data) == {"db_password"}
    proof = k8s_proof(core, namespace, "db-creds", "db_password")
    assert proof["cert_id"] == result.cert_id and proof["cert_url"] == result.cert_url
    assert secret["annotations"] == {
        "passgeni.ai/cert-url": result.cert_url,
        "passgeni.ai/cert-id": result.cert_id,
        "passgeni.ai/standard": "SOC2",
        "passgeni.ai/expires-at": result.public_dict()["expires_at"],
    }
    # The certificate names this Secret and key, and binds the stored value.
    record = client.get_certificate(result.cert_id)
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    target = cert.claims.target
    assert target is not None
    assert (target.system, target.path, target.version) == (
        "k8s",
        f"{namespace}/db-creds#db_password",
        None,
    )
    verify_provenance(cert, data["db_password"], decode_seed(proof["seed"]))
    back = store.read(parse_store_uri(uri))
    assert back is not None and back.refs is not None and back.metadata_refs is not None
    assert back.password == data["db_password"]
    assert back.refs.cert_id == back.metadata_refs.cert_id == result.cert_id
    # Secrets never in reprs.
    assert data["db_password"] not in repr(back) + repr(result) + repr(store)
    # Idempotent: a second run leaves it alone and issues nothing.
    again = provision_into_store(client, store, uri, "soc2")
    assert again.outcome == "unchanged" and again.cert_id == result.cert_id
    assert read_secret(core, namespace, "db-creds")["data"] == data
    store.close()


def test_other_data_keys_labels_and_annotations_are_kept(
    core: Any, authority: Authority, namespace: str
) -> None:
    make_secret(
        core,
        namespace,
        "app",
        data={"username": "app", "config.yaml": "a: 1\n"},
        annotations={"team.example/owner": "a", "argocd.argoproj.io/sync-wave": "2"},
        labels={"app": "web"},
    )
    client = authority.client()
    store = KubernetesSecretStore()
    first = provision_into_store(client, store, f"k8s://{namespace}/app#api_token", "soc2")
    second = provision_into_store(client, store, f"k8s://{namespace}/app#db_password", "pci-dss")
    secret = read_secret(core, namespace, "app")
    assert secret["data"]["username"] == "app" and secret["data"]["config.yaml"] == "a: 1\n"
    assert secret["labels"] == {"app": "web"}
    assert secret["annotations"]["team.example/owner"] == "a"
    assert secret["annotations"]["argocd.argoproj.io/sync-wave"] == "2"
    # Both keys keep their own references; the annotations describe the last write.
    assert k8s_proof(core, namespace, "app", "api_token")["cert_id"] == first.cert_id
    assert k8s_proof(core, namespace, "app", "db_password")["cert_id"] == second.cert_id
    assert secret["annotations"]["passgeni.ai/cert-id"] == second.cert_id
    assert secret["annotations"]["passgeni.ai/standard"] == "PCI-DSS"
    listed = {
        str(c.uri): c for c in store.list(parse_store_uri(f"k8s://{namespace}", allow_prefix=True))
    }
    assert set(listed) == {
        f"k8s://{namespace}/app#api_token",
        f"k8s://{namespace}/app#db_password",
    }
    refs = listed[f"k8s://{namespace}/app#api_token"].refs
    assert refs is not None and refs.cert_id == first.cert_id

    # Rotation replaces one key, keeps the rest, revokes the old certificate after the store.
    steps: list[str] = []
    rotated = rotate(
        client,
        store,
        f"k8s://{namespace}/app#api_token",
        "soc2",
        before_write=steps.append,
    )
    assert steps == ["write", "metadata", "revoke-previous"]
    assert rotated.outcome == "rotated" and rotated.previous_revoked is True
    after = read_secret(core, namespace, "app")
    assert after["data"]["api_token"] != secret["data"]["api_token"]
    assert after["data"]["db_password"] == secret["data"]["db_password"]
    assert after["data"]["username"] == "app"
    assert after["annotations"]["team.example/owner"] == "a"
    assert client.get_certificate(first.cert_id).status == "revoked"


def test_create_if_absent_refuses_a_secret_created_meanwhile(
    core: Any, authority: Authority, namespace: str
) -> None:
    client = authority.client()
    store = KubernetesSecretStore()

    def race(step: str) -> None:
        if step == "write":  # another writer creates the Secret between prepare and write
            make_secret(core, namespace, "raced", data={"password": "theirs"})

    with pytest.raises(StoreConflict, match="another writer") as info:
        provision_into_store(client, store, f"k8s://{namespace}/raced", "soc2", before_write=race)
    assert "was revoked (reason: not stored)" in str(info.value)
    assert read_secret(core, namespace, "raced")["data"] == {"password": "theirs"}
    assert "theirs" not in str(info.value)
    # An uncertified value already there is never replaced without --rotate.
    with pytest.raises(StoreConflict, match="rotation"):
        provision_into_store(client, store, f"k8s://{namespace}/raced", "soc2")
    assert read_secret(core, namespace, "raced")["data"] == {"password": "theirs"}


def test_annotation_aliases_and_legacy_spelling() -> None:
    refs = annotation_refs({"passgenni-cert-url": "https://auth.example/cert/pg_abc"})
    assert refs is not None and (refs.cert_id, refs.cert_url) == (
        "pg_abc",
        "https://auth.example/cert/pg_abc",
    )
    refs = annotation_refs(
        {
            "passgeni.ai/cert-url": "https://a/cert/new",
            "passgeni.ai/cert-id": "new",
            "passgenni-cert-url": "https://a/cert/old",
            "passgeni.ai/expires-at": "2030-01-01T00:00:00Z",
        }
    )
    assert refs is not None and refs.cert_id == "new" and refs.expires_at is not None
    assert annotation_refs({"other": "x"}) is None


def test_unreachable_api_server_and_missing_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = KubernetesSecretStore(host=f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(StoreUnavailable, match="cannot reach the Kubernetes API"):
        store.read(parse_store_uri("k8s://ns/name"))
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    with pytest.raises(StoreError, match="no Kubernetes configuration"):
        open_store("k8s://ns/name")
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: sekrit}\n")
    with pytest.raises(StoreError) as info:
        KubernetesSecretStore(kubeconfig=str(bad))
    assert "sekrit" not in str(info.value)


def test_explicit_api_client_option(kube_emulator: KubeEmulator, namespace: str, core: Any) -> None:
    api_client = kube_emulator.api_client()
    store = open_store(f"k8s://{namespace}", api_client=api_client)
    assert repr(store) == f"KubernetesSecretStore(host={kube_emulator.url!r})"
    make_secret(core, namespace, "plain", data={"password": "x"})
    make_secret(core, namespace, "tls", data={"tls.crt": "c", "tls.key": "k"})
    found = list(store.list(parse_store_uri(f"k8s://{namespace}", allow_prefix=True)))
    assert [str(c.uri) for c in found] == [f"k8s://{namespace}/plain#password"]
    store.close()  # does not close a client it was given
    assert api_client.call_api is not None
    api_client.close()


def test_an_inline_credential_proves_scans_and_is_migrated_on_rotation(
    core: Any, authority: Authority, namespace: str
) -> None:
    """A Secret written before proof records (seed and references in its data)."""
    from passgeni_core import scan
    from passgeni_core.workflows import rotate

    uri = f"k8s://{namespace}/legacy#password"
    client = authority.client()
    made = provision_into_store(client, KubernetesSecretStore(proof_location="inline"), uri, "soc2")
    assert set(read_secret(core, namespace, "legacy")["data"]) == {
        "password",
        "password.passgeni-seed",
        "password.passgeni-cert-id",
        "password.passgeni-cert-url",
    }
    store = KubernetesSecretStore()
    before = store.read(parse_store_uri(uri))
    assert before is not None and before.proof_layout == "inline"
    report = scan(client, [uri])
    assert report.ok and [e.status for e in report.entries] == ["valid"]
    rotated = rotate(client, store, uri, "soc2")
    assert set(read_secret(core, namespace, "legacy")["data"]) == {"password"}  # migrated
    assert k8s_proof(core, namespace, "legacy")["cert_id"] == rotated.cert_id
    assert client.get_certificate(made.cert_id).status == "revoked"
    report = scan(client, [uri, f"k8s://{namespace}"])
    assert report.ok and {e.status for e in report.entries if str(e.uri) == uri} == {"valid"}
    assert not [e for e in report.entries if "passgeni-proof" in str(e.uri)]
