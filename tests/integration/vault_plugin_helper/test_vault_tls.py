"""Vault over TLS, as ``bao server -dev-tls`` serves it (issue #18, item 1: TLS was ignored).

hvac takes a given session's ``verify`` over its own argument, so the store's fresh session
(``verify=True``) replaced ``VAULT_CACERT``/``VAULT_CAPATH``: every variable failed as "cannot
reach Vault". Each standard variable is honoured now, and a TLS failure says so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from passgeni_core import StoreUnavailable, parse_store_uri
from tests.support import OpenBaoServer
from vault_plugin_helper.vault import VaultStore


@pytest.fixture(scope="module")
def tls_bao() -> Iterator[OpenBaoServer]:
    with OpenBaoServer(tls=True) as server:
        yield server


def _store(server: OpenBaoServer, **env: str) -> VaultStore:
    environ = {"VAULT_ADDR": server.url, "VAULT_TOKEN": server.token, **env}
    return VaultStore(environ=environ)


def _reads(store: VaultStore, uid: str) -> None:
    # Reading an absent secret is a real request over TLS: None, not an error.
    assert store.read(parse_store_uri(f"vault://secret/tls/{uid}#password")) is None


def test_vault_cacert_capath_and_skip_verify_are_honoured(
    tls_bao: OpenBaoServer, tmp_path: Path
) -> None:
    _reads(_store(tls_bao, VAULT_CACERT=str(tls_bao.ca_file)), "cacert")
    capath = tmp_path / "capath"
    capath.mkdir()
    shutil.copy(tls_bao.ca_file, capath / "vault-ca.pem")
    openssl = shutil.which("openssl")
    if openssl:  # a CA directory is looked up by subject hash, as `c_rehash` lays it out
        subject = subprocess.run(
            [openssl, "x509", "-hash", "-noout", "-in", str(tls_bao.ca_file)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        (capath / f"{subject}.0").symlink_to(capath / "vault-ca.pem")
        _reads(_store(tls_bao, VAULT_CAPATH=str(capath)), "capath")
    _reads(_store(tls_bao, VAULT_SKIP_VERIFY="true"), "skip")


def test_requests_ca_bundle_is_honoured(
    tls_bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_bao.ca_file))
    _reads(_store(tls_bao), "bundle")


def test_an_untrusted_certificate_says_so(
    tls_bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(StoreUnavailable) as info:
        _reads(_store(tls_bao), "untrusted")
    message = info.value.message
    assert message.startswith(f"certificate verify failed for {tls_bao.url}")
    assert "VAULT_CACERT" in message and tls_bao.token not in message


def test_vault_tls_server_name_is_sent_and_checked(
    tls_bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dev certificate names localhost (and 127.0.0.1): the server name replaces the
    # address's host both in SNI and in the certificate check.
    ca = str(tls_bao.ca_file)
    _reads(_store(tls_bao, VAULT_CACERT=ca, VAULT_TLS_SERVER_NAME="localhost"), "sni")
    with pytest.raises(StoreUnavailable) as info:
        _reads(_store(tls_bao, VAULT_CACERT=ca, VAULT_TLS_SERVER_NAME="vault.example"), "bad")
    message = info.value.message
    assert message.startswith(f"certificate verify failed for {tls_bao.url}")
    assert "VAULT_TLS_SERVER_NAME" in message
    # The variable is honoured by logins too (the approle login goes through the same session).
    with pytest.raises(StoreUnavailable, match="certificate verify failed"):
        _store(
            tls_bao,
            VAULT_CACERT=ca,
            VAULT_TLS_SERVER_NAME="vault.example",
            VAULT_AUTH_METHOD="approle",
            VAULT_ROLE_ID="r",
            VAULT_SECRET_ID="s",
        )
