"""Smoke tests: every real-server fixture in ``conftest.py`` serves real requests.

Each test talks to the server with the client library the product uses
(hvac, boto3, psycopg/SQLAlchemy, kubernetes, Chromium), so it fails if the
server is missing, not ready, or misbehaving.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    Chromium,
    KubeEmulator,
    MotoServer,
    OpenBaoServer,
    PostgresCluster,
    free_port,
    http_status,
)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# OpenBao
# --------------------------------------------------------------------------------------------


def test_openbao_kv2_roundtrip_and_custom_metadata_merge_patch(openbao: OpenBaoServer) -> None:
    import hvac

    client = hvac.Client(url=openbao.url, token=openbao.token)
    assert client.is_authenticated()
    path = _unique("passgeni/db")

    client.secrets.kv.v2.create_or_update_secret(path, secret={"password": "s3cr3t!"})
    read = client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "s3cr3t!"}

    client.secrets.kv.v2.update_metadata(
        path, custom_metadata={"owner": "team-a", "preset": "nist-800-63b"}
    )
    response = client.adapter.request(
        "PATCH",
        f"v1/secret/metadata/{path}",
        json={"custom_metadata": {"preset": "pci-dss-4", "passgeni_cert": "eyJhbGciOi"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code in (200, 204)

    metadata = client.secrets.kv.v2.read_secret_metadata(path)["data"]["custom_metadata"]
    assert metadata == {"owner": "team-a", "preset": "pci-dss-4", "passgeni_cert": "eyJhbGciOi"}
    # The secret value itself is untouched by metadata writes.
    read = client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "s3cr3t!"}


def test_openbao_restart_same_port_loses_data_and_pause_resume() -> None:
    import hvac

    with OpenBaoServer() as bao:
        client = hvac.Client(url=bao.url, token=bao.token, timeout=5)
        client.secrets.kv.v2.create_or_update_secret("before-restart", secret={"k": "v"})
        port = bao.port

        bao.stop()
        assert not bao.running
        with pytest.raises(OSError):
            http_status(f"{bao.url}/v1/sys/health", timeout=0.5)

        bao.start()
        assert bao.port == port
        with pytest.raises(hvac.exceptions.InvalidPath):  # dev mode: data is gone
            client.secrets.kv.v2.read_secret_version(
                "before-restart", raise_on_deleted_version=True
            )

        bao.pause()
        with pytest.raises(OSError):  # accepted by the kernel, never answered
            http_status(f"{bao.url}/v1/sys/health", timeout=0.3)
        bao.resume()
        assert http_status(f"{bao.url}/v1/sys/health") == 200


# --------------------------------------------------------------------------------------------
# moto
# --------------------------------------------------------------------------------------------


def test_moto_secret_with_tags(moto_server: MotoServer) -> None:
    sm = moto_server.boto3_client("secretsmanager")
    name = _unique("passgeni/app")
    tags = [{"Key": "passgeni:preset", "Value": "nist-800-63b"}, {"Key": "owner", "Value": "a"}]

    created = sm.create_secret(Name=name, SecretString="hunter2!", Tags=tags)
    value = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    assert value["SecretString"] == "hunter2!"
    assert value["ARN"] == created["ARN"]
    assert "AWSCURRENT" in value["VersionStages"]

    described = sm.describe_secret(SecretId=name)
    assert sorted(described["Tags"], key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])


def test_moto_reset() -> None:
    with MotoServer() as moto:
        sm = moto.boto3_client()
        sm.create_secret(Name="to-forget", SecretString="x")
        assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == ["to-forget"]
        moto.reset()
        assert sm.list_secrets()["SecretList"] == []


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def test_postgres_version_and_database(postgres: PostgresCluster) -> None:
    import psycopg
    import sqlalchemy

    with psycopg.connect(
        host="127.0.0.1", port=postgres.port, user="postgres", dbname="postgres"
    ) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    assert "PostgreSQL 15" in row[0]

    name = _unique("authority").replace("-", "_")
    url = postgres.create_database(name)
    assert url == postgres.url(name)
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{name}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE t (v text)"))
            connection.execute(sqlalchemy.text("INSERT INTO t VALUES ('ok')"))
            db = connection.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
            value = connection.execute(sqlalchemy.text("SELECT v FROM t")).scalar_one()
    finally:
        engine.dispose()
    assert (db, value) == (name, "ok")


# --------------------------------------------------------------------------------------------
# Kubernetes emulator
# --------------------------------------------------------------------------------------------


def test_kube_emulator_secret_crud(kube_emulator: KubeEmulator) -> None:
    from kubernetes import client

    api = client.CoreV1Api(kube_emulator.api_client())
    namespace = _unique("ns")
    name = _unique("passgeni-cert")
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name, namespace=namespace, annotations={"passgeni.ai/preset": "nist"}
        ),
        data={"password": "aHVudGVyMiE="},
        type="Opaque",
    )

    api.create_namespaced_secret(namespace, body)
    got = api.read_namespaced_secret(name, namespace)
    assert got.metadata is not None
    assert got.data == {"password": "aHVudGVyMiE="}
    assert got.metadata.annotations == {"passgeni.ai/preset": "nist"}

    listed = api.list_namespaced_secret(namespace)
    assert [item.metadata.name for item in listed.items if item.metadata] == [name]

    patched = api.patch_namespaced_secret(
        name, namespace, {"metadata": {"annotations": {"passgeni.ai/cert": "eyJ"}}}
    )
    assert patched.metadata is not None
    assert patched.metadata.annotations == {"passgeni.ai/preset": "nist", "passgeni.ai/cert": "eyJ"}

    api.delete_namespaced_secret(name, namespace)
    with pytest.raises(client.ApiException) as excinfo:
        api.read_namespaced_secret(name, namespace)
    assert excinfo.value.status == 404


def test_kube_emulator_generate_name(kube_emulator: KubeEmulator) -> None:
    from kubernetes import client

    api = client.CoreV1Api(kube_emulator.api_client())
    namespace = _unique("ns")
    names = set()
    for _ in range(2):
        meta = client.V1ObjectMeta(generate_name="kopf-event-", namespace=namespace)
        created = api.create_namespaced_event(
            namespace,
            client.CoreV1Event(
                metadata=meta,
                involved_object=client.V1ObjectReference(kind="Secret", name="s"),
                reason="Certified",
            ),
        )
        assert created.metadata is not None and created.metadata.name is not None
        assert created.metadata.name.startswith("kopf-event-")
        names.add(created.metadata.name)
    assert len(names) == 2
    listed = api.list_namespaced_event(namespace)
    assert {item.metadata.name for item in listed.items if item.metadata} == names


def test_kube_emulator_custom_resource(kube_emulator: KubeEmulator) -> None:
    from kubernetes import client

    plural = _unique("certs").replace("-", "")
    kube_emulator.register_resource(
        f"passgeni.ai/v1/{plural}", kind="ComplianceCertificate", namespaced=True
    )
    api = client.CustomObjectsApi(kube_emulator.api_client())
    namespace = _unique("ns")
    body = {
        "apiVersion": "passgeni.ai/v1",
        "kind": "ComplianceCertificate",
        "metadata": {"name": "c1", "namespace": namespace},
        "spec": {"preset": "nist"},
    }
    api.create_namespaced_custom_object("passgeni.ai", "v1", namespace, plural, body)
    listed: Any = api.list_namespaced_custom_object("passgeni.ai", "v1", namespace, plural)
    assert [item["spec"] for item in listed["items"]] == [{"preset": "nist"}]
    stored = kube_emulator.objects()
    assert stored[(f"passgeni.ai/v1/{plural}", namespace, "c1")]["spec"] == {"preset": "nist"}


def _secret(name: str, namespace: str) -> Any:
    from kubernetes import client

    return client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def test_kube_emulator_documented_quirks(kube_emulator: KubeEmulator) -> None:
    """Pins what the ``tests.support.kube`` docstring says about server-side apply and PUT."""
    from kubernetes import client

    api = client.CoreV1Api(kube_emulator.api_client())
    namespace = _unique("ns")
    name = _unique("ssa")
    apply_body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"a": "1"}},
        "data": {"k": "dg=="},
    }

    def apply(body: dict[str, Any]) -> Any:
        return api.patch_namespaced_secret(
            name,
            namespace,
            body,
            field_manager="passgeni",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    with pytest.raises(client.ApiException) as excinfo:  # real SSA would create it
        apply(apply_body)
    assert excinfo.value.status == 404

    api.create_namespaced_secret(namespace, _secret(name, namespace))
    apply(apply_body)
    applied = apply({**apply_body, "metadata": {"name": name, "namespace": namespace}})
    assert applied.metadata.labels == {"a": "1"}  # plain merge: dropped fields are kept
    assert applied.metadata.managed_fields is None

    with pytest.raises(client.ApiException) as excinfo:
        api.replace_namespaced_secret(name, namespace, _secret(name, namespace))
    assert excinfo.value.status == 404

    # Label selectors are ignored: every secret of the namespace comes back.
    api.create_namespaced_secret(namespace, _secret("other", namespace))
    listed = api.list_namespaced_secret(namespace, label_selector="a=1")
    names = sorted(str(item.metadata.name) for item in listed.items if item.metadata)
    assert names == sorted([name, "other"])


# --------------------------------------------------------------------------------------------
# Chromium
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_site(tmp_path: Path) -> Iterator[str]:
    """A one-page site on a free port: static marker plus a marker written by JavaScript."""
    (tmp_path / "index.html").write_text(
        "<!doctype html><html><head><title>cert</title></head><body>"
        '<p id="static">PASSGENI-STATIC-MARKER</p>'
        "<script>document.body.insertAdjacentHTML('beforeend',"
        " '<p id=\"js\">PASSGENI-' + 'JS-MARKER</p>')</script>"
        "</body></html>"
    )

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_dump_dom(chromium: Chromium, tiny_site: str) -> None:
    began = time.monotonic()
    dom = chromium.dump_dom(tiny_site)
    assert "PASSGENI-STATIC-MARKER" in dom
    assert "PASSGENI-JS-MARKER" in dom  # the script ran: a real browser, not a fetch
    assert time.monotonic() - began < 30


def test_chromium_screenshot(chromium: Chromium, tiny_site: str, tmp_path: Path) -> None:
    shot = chromium.screenshot(tiny_site, tmp_path / "page.png", window_size=(640, 480))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
