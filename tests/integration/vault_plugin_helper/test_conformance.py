"""The backend conformance suite against the first-party Vault/OpenBao and AWS backends.

Real servers (OpenBao, moto) from the session fixtures; the certificates come
from the suite's in-process FakeAuthority (the backends never see the authority).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from passgeni_core.stores import StoreURI, parse_store_uri
from passgeni_core.testing import BackendConformance, FakeAuthority, provision_generated
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

    def consumed_value(self, uri: StoreURI) -> Mapping[str, Any] | None:
        # What a Vault Agent template or `vault kv get` reads: the current version, all fields.
        path = uri.location.split("/", 1)[1]
        hv = self.openbao.hvac_client()
        try:
            answer = hv.secrets.kv.v2.read_secret_version(
                path=path, mount_point="secret", raise_on_deleted_version=True
            )
        except Exception:
            return None
        data: dict[str, Any] = answer["data"]["data"]
        return data

    def proof_record(self, uri: StoreURI) -> Mapping[str, Any]:
        path = uri.location.split("/", 1)[1]
        answer = self.openbao.hvac_client().secrets.kv.v2.read_secret_version(
            path=f"passgeni-proof/{path}", mount_point="secret", raise_on_deleted_version=True
        )
        record: dict[str, Any] = answer["data"]["data"]
        return record

    def test_the_proof_record_is_the_sibling_secret(self) -> None:

        with self.opened() as store:
            uri = self.uri("sibling")
            credential, refs, version = provision_generated(FakeAuthority(), store, uri)
        record = self.proof_record(uri)
        assert list(record) == ["password.passgeni-proof"]
        (entry,) = json.loads(record["password.passgeni-proof"])
        assert entry["cert_id"] == refs.cert_id and entry["version"] == version
        assert "seed" in entry and credential.password not in json.dumps(entry)
        # A listing of the mount never reports a proof record as a credential.
        with self.opened() as store:
            listed = [
                str(c.uri) for c in store.list(parse_store_uri("vault://secret", allow_prefix=True))
            ]
        assert str(uri) in listed and not [u for u in listed if "passgeni-proof" in u]


class TestVaultInlineConformance(TestVaultConformance):
    """The ``proof_location=inline`` opt-out: proof and references inside the value."""

    run = secrets.token_hex(4)

    def make_store(self) -> VaultStore:
        return VaultStore(
            environ={"VAULT_ADDR": self.openbao.url, "VAULT_TOKEN": self.openbao.token},
            proof_location="inline",
        )

    def test_the_proof_record_is_the_sibling_secret(self) -> None:
        pass  # inline: there is none (checked by test_the_consumed_value_holds_only_the_credential)


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

    def consumed_value(self, uri: StoreURI) -> Mapping[str, Any] | None:
        # What External Secrets or a Lambda reads: AWSCURRENT's SecretString.
        try:
            answer = self.sm.get_secret_value(SecretId=uri.location, VersionStage="AWSCURRENT")
        except self.sm.exceptions.ResourceNotFoundException:
            return None
        value: dict[str, Any] = json.loads(answer["SecretString"])
        return value

    def test_the_proof_record_is_the_sibling_secret(self) -> None:

        with self.opened() as store:
            uri = self.uri("sibling")
            _, refs, version = provision_generated(FakeAuthority(), store, uri)
        name = f"passgeni-proof/{uri.location}"
        answer = self.sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        (entry,) = json.loads(json.loads(answer["SecretString"])["password.passgeni-proof"])
        assert entry["cert_id"] == refs.cert_id and entry["version"] == version
        tags = {t["Key"]: t["Value"] for t in self.sm.describe_secret(SecretId=name)["Tags"]}
        assert tags == {"passgeni-proof-of": uri.location}
        # A listing never reports a proof record as a credential.
        with self.opened() as store:
            prefix = parse_store_uri("aws-sm://", allow_prefix=True)
            listed = [str(c.uri) for c in store.list(prefix)]
        assert listed and not [u for u in listed if "passgeni-proof" in u]
