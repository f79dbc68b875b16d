"""The store protocol in the core: URI grammar, discovery by scheme, and the nothing-lost
write order, with failures injected between steps on a real OpenBao and the real authority."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import (
    AuthorityUnavailable,
    CertificateRefs,
    Credential,
    InvalidStoreURI,
    SecretStore,
    StoreConflict,
    StoreUnavailable,
    StoreURI,
    UnknownStoreScheme,
    WritePlan,
    available_schemes,
    open_store,
    parse_store_uri,
    provision_into_store,
    register_store,
)
from passgeni_core.cli import main
from passgeni_core.stores import LocationGrammar
from passgeni_core.workflows import rotate
from tests.integration.vault_plugin_helper.fixtures import *  # noqa: F403 - fixtures
from tests.integration.vault_plugin_helper.fixtures import Authority, running_authority
from tests.support import OpenBaoServer
from tests.support.proofs import vault_proof
from vault_plugin_helper.vault import VaultStore


def test_backends_are_found_by_scheme_through_entry_points(openbao: OpenBaoServer) -> None:
    assert {"vault", "aws-sm"} <= set(available_schemes())
    store = open_store(
        "vault://secret/x/y", environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": "t"}
    )
    assert isinstance(store, VaultStore) and isinstance(store, SecretStore)
    with pytest.raises(UnknownStoreScheme) as info:
        open_store("gcp-sm://projects/x")
    assert "vault" in info.value.message and "aws-sm" in info.value.message


class MemoryStore:
    """A complete third-party backend in a few lines: one dict, versions counted."""

    system = "mem"

    def __init__(self) -> None:
        self.secrets: dict[str, tuple[int, dict[str, str], dict[str, str]]] = {}

    @classmethod
    def from_uri(cls, uri: StoreURI, **options: Any) -> MemoryStore:
        return SHARED_MEMORY

    def _get(self, uri: StoreURI) -> tuple[int, dict[str, str], dict[str, str]]:
        return self.secrets.get(uri.location, (0, {}, {}))

    def read(self, uri: StoreURI) -> Any:
        from passgeni_core.stores import stored_credentials

        version, data, meta = self._get(uri)
        if not version:
            return None
        rec = stored_credentials(
            uri, data, version=str(version),
            metadata_refs=CertificateRefs.from_metadata(meta), only_key=uri.key,
        )[0]  # fmt: skip
        return rec if rec.password is not None else None

    def prepare(self, uri: StoreURI) -> WritePlan:
        version = self._get(uri)[0]
        return WritePlan(
            uri=uri,
            current=self.read(uri),
            next_version=str(version + 1),
            precondition=str(version),
        )

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        return None

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        from passgeni_core.stores import credential_fields

        version, data, meta = self._get(plan.uri)
        if str(version) != plan.precondition:
            raise StoreConflict("changed")
        new = {**data, **credential_fields(plan.uri.key, credential, refs)}
        self.secrets[plan.uri.location] = (version + 1, new, meta)
        return str(version + 1)

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        version, data, meta = self._get(uri)
        self.secrets[uri.location] = (version, data, {**meta, **refs.to_metadata()})

    def list(self, prefix: StoreURI) -> Iterator[Any]:
        for location in sorted(self.secrets):
            if location.startswith(prefix.location):
                rec = self.read(prefix.with_location(location))
                if rec is not None:
                    yield rec

    def close(self) -> None:
        return None


SHARED_MEMORY = MemoryStore()


def test_a_third_party_backend_plugs_in_by_scheme(authority: Authority) -> None:
    register_store("mem", MemoryStore.from_uri)
    try:
        assert "mem" in available_schemes()
        store = open_store("mem://team/db")
        result = provision_into_store(authority.client(), store, "mem://team/db", "soc2")
        assert result.version == "1"
        _version, data, meta = SHARED_MEMORY.secrets["team/db"]
        # A backend without write_proof keeps the inline layout, as before.
        assert meta["passgeni-cert-id"] == data["password.passgeni-cert-id"] == result.cert_id
        from passgeni_core import scan

        report = scan(authority.client(), ["mem://team"])
        assert [e.status for e in report.entries] == ["valid"]
    finally:
        register_store("mem", None)


class FailingStore:
    """The real VaultStore, with a failure injected at one step (as a crash or outage would)."""

    def __init__(self, inner: VaultStore, *, fail_write: str = "", fail_read: bool = False) -> None:
        self.inner = inner
        self.system = inner.system
        self.fail_write = fail_write  # "before": nothing written; "after": written, answer lost
        self.fail_read = fail_read

    def prepare(self, uri: StoreURI) -> WritePlan:
        return self.inner.prepare(uri)

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        self.inner.check(plan, refs)

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        if self.fail_write == "before":
            raise StoreUnavailable("connection reset by peer")
        version = self.inner.write(plan, credential, refs)
        if self.fail_write == "after":
            raise StoreUnavailable("read timed out")  # the write landed, its answer was lost
        return version

    def write_proof(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> None:
        self.inner.write_proof(plan, credential, refs)

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        self.inner.write_metadata(uri, refs)

    def read(self, uri: StoreURI) -> Any:
        if self.fail_read:
            raise StoreUnavailable("read timed out")
        return self.inner.read(uri)

    def list(self, prefix: StoreURI) -> Iterator[Any]:
        return self.inner.list(prefix)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def vault(openbao: OpenBaoServer) -> VaultStore:
    return VaultStore(environ={"VAULT_ADDR": openbao.url, "VAULT_TOKEN": openbao.token})


def kv(openbao: OpenBaoServer, path: str) -> tuple[int, dict[str, str]]:
    got = openbao.hvac_client().secrets.kv.v2.read_secret_version(
        path=path, mount_point="secret", raise_on_deleted_version=True
    )["data"]
    return got["metadata"]["version"], got["data"]


def cert_id_in(message: str) -> str:
    return message.split("certificate ")[1].split(" ")[0]


def test_store_down_after_certification_keeps_the_old_credential(
    openbao: OpenBaoServer, vault: VaultStore, authority: Authority, uid: str
) -> None:
    client = authority.client()
    uri = f"vault://secret/{uid}/db"
    first = provision_into_store(client, vault, uri, "soc2")
    old_version, old_data = kv(openbao, f"{uid}/db")
    with pytest.raises(StoreUnavailable) as info:
        rotate(client, FailingStore(vault, fail_write="before"), uri, "soc2")
    message = info.value.message
    assert "the new credential was not stored" in message
    assert "was revoked (reason: not stored)" in message
    assert "the previous credential is unchanged" in message
    new_cert = cert_id_in(message)
    assert new_cert != first.cert_id
    assert client.get_certificate(new_cert).revocation_reason == "not stored"
    # The old credential is still current, readable and certified.
    assert kv(openbao, f"{uid}/db") == (old_version, old_data)
    assert client.get_certificate(first.cert_id).status == "valid"
    # Re-running completes the job; the old certificate goes only now.
    done = rotate(client, vault, uri, "soc2")
    assert done.outcome == "rotated" and done.version == str(old_version + 1)
    assert done.previous_cert_id == first.cert_id and done.previous_revoked
    assert client.get_certificate(first.cert_id).revocation_reason == "rotated"


def test_store_paused_during_write_on_a_private_server(authority: Authority, uid: str) -> None:
    """A hung Vault (SIGSTOP): timeouts, a clear error, certificate revoked, nothing half-written."""
    with OpenBaoServer() as bao:
        store = VaultStore(
            environ={"VAULT_ADDR": bao.url, "VAULT_TOKEN": bao.token, "VAULT_CLIENT_TIMEOUT": "3"}
        )
        client = authority.client()
        uri = f"vault://secret/{uid}/db"
        provision_into_store(client, store, uri, "soc2")
        before = kv(bao, f"{uid}/db")

        def hang(step: str) -> None:
            if step == "write":
                bao.pause()

        try:
            with pytest.raises(StoreUnavailable) as info:
                rotate(client, store, uri, "soc2", before_write=hang)
        finally:
            bao.resume()
        assert "could not confirm" in info.value.message
        revoked = cert_id_in(info.value.message)
        assert client.get_certificate(revoked).status == "revoked"
        after = kv(bao, f"{uid}/db")
        if after != before:
            # The write the client gave up on was still in Vault's socket buffer and
            # landed once Vault resumed (a real Vault does the same): the value then
            # carries the certificate that was revoked, never a valid one nobody kept.
            assert after[0] == before[0] + 1
            assert vault_proof(bao.hvac_client(), f"{uid}/db")["cert_id"] == revoked
        # Either way a re-run completes the job with a valid certificate.
        again = rotate(client, store, uri, "soc2")
        assert again.version == str(after[0] + 1)
        assert client.get_certificate(again.cert_id).status == "valid"


def test_lost_answer_after_a_successful_write_is_not_a_failure(
    openbao: OpenBaoServer, vault: VaultStore, authority: Authority, uid: str
) -> None:
    client = authority.client()
    uri = f"vault://secret/{uid}/lost"
    result = provision_into_store(client, FailingStore(vault, fail_write="after"), uri, "soc2")
    version, data = kv(openbao, f"{uid}/lost")
    assert str(version) == result.version and set(data) == {"password"}
    assert vault_proof(openbao.hvac_client(), f"{uid}/lost")["cert_id"] == result.cert_id
    assert client.get_certificate(result.cert_id).status == "valid"


def test_unconfirmable_write_then_rerun_replaces_the_not_stored_credential(
    openbao: OpenBaoServer, vault: VaultStore, authority: Authority, uid: str
) -> None:
    """Worst case: the write landed but nothing could confirm it, so its certificate was
    revoked; the stored credential then has a revoked certificate. Re-running replaces it."""
    client = authority.client()
    uri = f"vault://secret/{uid}/blind"
    with pytest.raises(StoreUnavailable) as info:
        provision_into_store(
            client, FailingStore(vault, fail_write="after", fail_read=True), uri, "soc2"
        )
    revoked = cert_id_in(info.value.message)
    assert vault_proof(openbao.hvac_client(), f"{uid}/blind")["cert_id"] == revoked
    again = provision_into_store(client, vault, uri, "soc2")
    assert again.outcome == "replaced" and again.version == "2"
    assert vault_proof(openbao.hvac_client(), f"{uid}/blind")["cert_id"] == again.cert_id


def test_authority_down_writes_nothing(
    openbao: OpenBaoServer, vault: VaultStore, tmp_path: Path, uid: str
) -> None:
    with running_authority(tmp_path / "a") as auth:
        client = auth.client(retries=0)
        uri = f"vault://secret/{uid}/db"
        first = provision_into_store(client, vault, uri, "soc2")
        before = kv(openbao, f"{uid}/db")
        auth.embedded.stop()
        with pytest.raises(AuthorityUnavailable):
            rotate(client, vault, uri, "soc2")
        assert kv(openbao, f"{uid}/db") == before
        refs = vault.read(parse_store_uri(uri)).refs
        assert refs is not None and refs.cert_id == first.cert_id


def test_store_and_authority_down_says_what_to_revoke(
    openbao: OpenBaoServer, vault: VaultStore, tmp_path: Path, uid: str
) -> None:
    with running_authority(tmp_path / "a") as auth:
        client = auth.client(retries=0)

        def authority_dies(step: str) -> None:
            if step == "write":
                auth.embedded.stop()

        with pytest.raises(StoreUnavailable) as info:
            provision_into_store(
                client,
                FailingStore(vault, fail_write="before"),
                f"vault://secret/{uid}/x",
                "soc2",
                before_write=authority_dies,
            )
        message = info.value.message
        cert = cert_id_in(message)
        assert "could NOT be revoked" in message
        assert f"passgeni revoke {cert} --reason 'not stored'" in message


def test_idempotent_and_refuses_to_clobber(
    openbao: OpenBaoServer, vault: VaultStore, authority: Authority, uid: str
) -> None:
    client = authority.client()
    uri = f"vault://secret/{uid}/db"
    first = provision_into_store(client, vault, uri, "soc2")
    second = provision_into_store(client, vault, uri, "soc2")
    assert second.outcome == "unchanged" and second.cert_id == first.cert_id
    assert second.version == "1" and kv(openbao, f"{uid}/db")[0] == 1
    assert second.credential is not None and first.credential is not None
    assert second.credential.password == first.credential.password
    with pytest.raises(StoreConflict, match="certified for SOC2, not pci-dss"):
        provision_into_store(client, vault, uri, "pci-dss")
    # Somebody changes the password by hand: drifted, never silently overwritten.
    openbao.hvac_client().secrets.kv.v2.patch(
        path=f"{uid}/db", mount_point="secret", secret={"password": "hand-made"}
    )
    with pytest.raises(StoreConflict, match="drifted") as info:
        provision_into_store(client, vault, uri, "soc2")
    assert "hand-made" not in str(info.value)
    assert rotate(client, vault, uri, "soc2").outcome == "rotated"


def test_results_and_errors_never_show_secrets(
    vault: VaultStore, authority: Authority, uid: str
) -> None:
    result = provision_into_store(authority.client(), vault, f"vault://secret/{uid}/s", "soc2")
    assert result.credential is not None
    password = result.credential.password
    for text in (repr(result), str(result), json.dumps(result.public_dict()), repr(vault)):
        assert password not in text
        assert "passgeni-test-root" not in text


@pytest.mark.usefixtures("passgeni_env", "vault_env")
def test_cli_provision_store_json_holds_references_only(
    openbao: OpenBaoServer, uid: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"vault://secret/{uid}/cli#db"
    assert main(["provision", "--preset", "soc2", "--store", uri, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    _version, data = kv(openbao, f"{uid}/cli")
    assert out["store_uri"] == uri and out["outcome"] == "created" and out["version"] == "1"
    assert out["cert_id"] == vault_proof(openbao.hvac_client(), f"{uid}/cli", "db")["cert_id"]
    assert "password" not in out and "binding_key" not in out
    assert data["db"] not in json.dumps(out)
    # Re-run: unchanged; --show-password then shows the stored one.
    assert main(["provision", "--preset", "soc2", "--store", uri, "--json", "--show-password"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["outcome"] == "unchanged" and again["password"] == data["db"]
    # Text mode with --show-password: the password alone on stdout.
    assert main(["provision", "--preset", "soc2", "--store", uri, "--show-password"]) == 0
    captured = capsys.readouterr()
    assert captured.out == data["db"] + "\n" and "cert id" in captured.err
    # --rotate
    assert main(["provision", "--preset", "soc2", "--store", uri, "--rotate"]) == 0
    text = capsys.readouterr().out
    assert "rotated" in text and kv(openbao, f"{uid}/cli")[0] == 2


@pytest.mark.usefixtures("passgeni_env", "vault_env")
def test_cli_provision_store_errors(
    authority: Authority, capsys: pytest.CaptureFixture[str]
) -> None:
    before = authority.client().audit(page_size=1).total
    assert main(["provision", "--preset", "soc2", "--store", "vault://secret"]) == 2
    err = capsys.readouterr().err
    assert "[invalid_store_uri]" in err and err.count("\n") == 1
    assert main(["provision", "--preset", "soc2", "--store", "nope://x/y"]) == 2
    assert "[unknown_store_scheme]" in capsys.readouterr().err
    code = main(
        ["provision", "--preset", "soc2", "--store", "vault://secret/a/b", "--credential-file", "f"]
    )
    assert code == 2 and "cannot be combined" in capsys.readouterr().err
    assert main(["provision", "--preset", "soc2", "--rotate"]) == 2
    capsys.readouterr()
    assert authority.client().audit(page_size=1).total == before  # nothing certified


@pytest.mark.usefixtures("vault_env")
def test_cli_without_an_authority_writes_nothing_to_vault(
    openbao: OpenBaoServer,
    uid: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fail closed on a real OpenBao: no authority configured, no version, no metadata."""
    for name in ("PASSGENI_URL", "PASSGENI_API_KEY", "PASSGENI_ISSUER", "PASSGENI_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSGENI_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    uri = f"vault://secret/{uid}/unconfigured#db"
    for extra in ([], ["--rotate"]):
        assert main(["provision", "--preset", "soc2", "--store", uri, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("passgeni: error [authority_not_configured]:")
    import requests

    def listed() -> int:
        answer = requests.request(
            "LIST",
            f"{openbao.url}/v1/secret/metadata/{uid}",
            headers={"X-Vault-Token": openbao.token},
            timeout=10,
        )
        return answer.status_code

    assert listed() == 404  # no secret, not even metadata, under the test's prefix
    # (The check can see a write: one made by hand lists.)
    openbao.hvac_client().secrets.kv.v2.create_or_update_secret(
        path=f"{uid}/by-hand", secret={"x": "y"}, mount_point="secret"
    )
    assert listed() == 200


class _TeamLocations:
    """A third party's grammar: ``mem2://TEAM/NAME``, teams in lower case."""

    form = "mem2://TEAM/NAME#KEY"
    incomplete = "expected TEAM/NAME"

    def check(self, location: str) -> bool:
        parts = location.split("/") if location else []
        if not parts or len(parts) > 2 or not parts[0].islower():
            raise ValueError("TEAM must be lower case, then at most one NAME")
        return len(parts) == 2


class GrammarStore(MemoryStore):
    locations = _TeamLocations()


def test_a_third_party_backend_brings_its_own_location_grammar() -> None:
    assert isinstance(GrammarStore.locations, LocationGrammar)
    register_store("mem2", GrammarStore.from_uri)
    register_store("mem3", MemoryStore.from_uri)  # no grammar: the generic one
    try:
        assert parse_store_uri("mem2://team/db").location == "team/db"
        assert parse_store_uri("mem2://team", allow_prefix=True).prefix
        with pytest.raises(InvalidStoreURI, match=r"expected TEAM/NAME \(expected mem2://"):
            parse_store_uri("mem2://team")
        with pytest.raises(InvalidStoreURI, match="TEAM must be lower case"):
            parse_store_uri("mem2://Team/db")
        # The generic grammar takes any printable location as one credential.
        assert not parse_store_uri("mem3://Team").prefix
        # A factory without a grammar keeps the installed backend's (vault's here).
        register_store("vault", MemoryStore.from_uri)
        with pytest.raises(InvalidStoreURI, match="MOUNT/PATH"):
            parse_store_uri("vault://secret")
        register_store("vault", None)
        with pytest.raises(InvalidStoreURI, match="MOUNT/PATH"):
            parse_store_uri("vault://secret")
    finally:
        register_store("mem2", None)
        register_store("mem3", None)
        register_store("vault", None)
