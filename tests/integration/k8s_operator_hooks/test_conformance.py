"""The backend conformance suite against the first-party Kubernetes backend (kmock emulator)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from k8s_operator_hooks.store import KubernetesSecretStore
from passgeni_core.stores import StoreURI, parse_store_uri
from passgeni_core.testing import BackendConformance
from tests.support import KubeEmulator


class TestKubernetesConformance(BackendConformance):
    namespace = "conformance-" + secrets.token_hex(4)

    @pytest.fixture(autouse=True)
    def _server(self, kube_emulator: KubeEmulator) -> Iterator[None]:
        from kubernetes import client

        self.api_client: Any = kube_emulator.api_client()
        yield
        # The emulator is shared by the session: leave no Secret behind for the
        # operator tests, whose kopf run -A lists every Secret it finds.
        core = client.CoreV1Api(self.api_client)
        for item in core.list_namespaced_secret(self.namespace).items:
            core.delete_namespaced_secret(item.metadata.name, self.namespace)
        self.api_client.close()

    def make_store(self) -> KubernetesSecretStore:
        return KubernetesSecretStore(api_client=self.api_client)

    def make_uri(self, name: str) -> StoreURI:
        return parse_store_uri(f"k8s://{self.namespace}/{name}#password")

    def test_write_refuses_to_clobber_a_concurrent_write(self) -> None:
        # The kmock emulator keeps no resourceVersion, so the update precondition the
        # backend sends cannot fail there (see k8s_operator_hooks.store); a real API
        # server refuses it. The create conflict (409) is checked by the suite.
        pytest.skip("the emulator keeps no resourceVersion: update check-and-set not observable")
