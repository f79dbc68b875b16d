"""Fixtures for the Kubernetes tests: the kmock emulator reached through a kubeconfig.

The store and the operator connect the way users do, through ``$KUBECONFIG``
(a file written here that points at the emulator), so the same code path as
``kubectl`` users' is exercised. ``core`` is a ``CoreV1Api`` of the official
client for the test's own reads and writes.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import AuthorityClient
from tests.support import KubeEmulator
from tests.support.authority import ShiftClock


@dataclass
class Authority:
    """The real authority (EmbeddedAuthority: uvicorn + SQLite) with a shiftable clock."""

    url: str
    api_key: str
    issuer: str
    clock: ShiftClock
    embedded: Any

    def client(self, **options: Any) -> AuthorityClient:
        return AuthorityClient(self.url, self.api_key, issuer=self.issuer, **options)


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    """Shared by the session: use unique namespaces per test."""
    from passgeni_authority import AuthoritySettings, RateLimits
    from passgeni_authority.embedded import EmbeddedAuthority

    state = tmp_path_factory.mktemp("k8s-authority")
    clock = ShiftClock()
    settings = AuthoritySettings(
        state_dir=state, clock=clock, fips_strict=False, rate_limits=RateLimits.unlimited()
    )
    with EmbeddedAuthority(state_dir=state, settings=settings) as embedded:
        issuer = embedded.service.settings.public_url
        yield Authority(embedded.base_url, embedded.api_key, issuer, clock, embedded)


@pytest.fixture
def passgeni_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, authority: Authority) -> None:
    """PASSGENI_URL / PASSGENI_API_KEY (and the issuer) pointing at the test authority."""
    cfg = tmp_path / "absent-config.toml"
    cfg.write_text("")
    monkeypatch.setenv("PASSGENI_CONFIG", str(cfg))
    monkeypatch.setenv("PASSGENI_URL", authority.url)
    monkeypatch.setenv("PASSGENI_API_KEY", authority.api_key)
    monkeypatch.setenv("PASSGENI_ISSUER", authority.issuer)
    monkeypatch.delenv("PASSGENI_TIMEOUT", raising=False)


KUBECONFIG_TEMPLATE = """\
apiVersion: v1
kind: Config
clusters:
- name: emulator
  cluster:
    server: {url}
users:
- name: tester
  user:
    token: not-a-real-token
contexts:
- name: emulator
  context:
    cluster: emulator
    user: tester
current-context: emulator
"""


@pytest.fixture
def kubeconfig(
    kube_emulator: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """``$KUBECONFIG`` pointing at the emulator (no in-cluster variables)."""
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG_TEMPLATE.format(url=kube_emulator.url))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    return path


@pytest.fixture
def namespace() -> str:
    """A namespace of its own per test (the emulator is shared by the session)."""
    return "ns-" + secrets.token_hex(4)


@pytest.fixture
def core(kube_emulator: KubeEmulator) -> Iterator[Any]:
    from kubernetes import client

    api_client = kube_emulator.api_client()
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def make_secret(
    core: Any,
    namespace: str,
    name: str,
    *,
    data: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    core.create_namespaced_secret(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": annotations or {},
                "labels": labels or {},
            },
            "data": {k: b64(v) for k, v in (data or {}).items()},
        },
    )


def read_secret(core: Any, namespace: str, name: str) -> dict[str, Any]:
    """The Secret as plain JSON: ``data`` decoded, ``annotations`` and ``labels``."""
    import json

    raw = json.loads(core.read_namespaced_secret(name, namespace, _preload_content=False).data)
    meta = raw.get("metadata") or {}
    return {
        "data": {k: unb64(v) for k, v in (raw.get("data") or {}).items()},
        "annotations": dict(meta.get("annotations") or {}),
        "labels": dict(meta.get("labels") or {}),
    }
