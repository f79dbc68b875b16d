"""The backend conformance suite against the first-party Vault/OpenBao and AWS backends.

Real servers (OpenBao, moto) from the session fixtures; the certificates come
from the suite's in-process FakeAuthority (the backends never see the authority).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from passgeni_core.stores import StoreURI, parse_store_uri
from passgeni_core.testing import BackendConformance
from tests.support import MotoServer, OpenBaoServer
from vault_plugin_helper.aws import SecretsManagerStore
from vault_plugin_helper.vault import VaultStore


class TestVaultConformance(BackendConformance):
    run = secrets.token_hex(4)

    @pytest.fixture(autouse=True)
    def _server(self, openbao: OpenBaoServer) -> None:
        self.openbao = openbao

    def make_store(self) -> VaultStore:
        return VaultStore(
            environ={"VAULT_ADDR": self.openbao.url, "VAULT_TOKEN": self.openbao.token}
        )

    def make_uri(self, name: str) -> StoreURI:
        return parse_store_uri(f"vault://secret/conformance/{self.run}/{name}#password")


class TestSecretsManagerConformance(BackendConformance):
    run = secrets.token_hex(4)

    @pytest.fixture(autouse=True)
    def _server(self, moto_server: MotoServer) -> Iterator[None]:
        self.sm: Any = moto_server.boto3_client()
        yield
        self.sm.close()

    def make_store(self) -> SecretsManagerStore:
        return SecretsManagerStore(client=self.sm)

    def make_uri(self, name: str) -> StoreURI:
        return parse_store_uri(f"aws-sm://conformance/{self.run}/{name}#password")
