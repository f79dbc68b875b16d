"""Vault auth methods beyond a token, against a real OpenBao (issue #18, item 2).

``VAULT_AUTH_METHOD`` selects ``approle``, ``jwt`` or ``kubernetes`` (OpenBao's real method;
the Kubernetes API's TokenReview it calls is answered by a one-endpoint stand-in); the store
logs in with hvac's public auth APIs and then works as with a token. A refused login
is one line naming the method, the mount and the role, never the secret.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_core import InvalidRequest, StoreError, parse_store_uri, provision_into_store
from passgeni_core.cli import main
from tests.support import OpenBaoServer
from tests.support.authority import Authority
from vault_plugin_helper.vault import VaultStore, vault_config_from_environ

WRITER = """
path "secret/data/auth/*" { capabilities = ["create", "read", "update"] }
path "secret/data/passgeni-proof/auth/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/auth/*" { capabilities = ["read", "update", "patch", "list"] }
"""
AUDIENCE = "passgeni-test"


@dataclass
class AuthBao:
    server: OpenBaoServer
    role_id: str
    secret_id: str
    other_role_id: str
    other_secret_id: str
    jwt_key: ec.EllipticCurvePrivateKey

    def jwt(self, *, audience: str = AUDIENCE, subject: str = "ci-job-1") -> str:
        now = int(time.time())
        claims = {"sub": subject, "aud": audience, "iat": now, "nbf": now - 5, "exp": now + 300}
        return pyjwt.encode(claims, self.jwt_key, algorithm="ES256")

    def env(self, **extra: str) -> dict[str, str]:
        return {"VAULT_ADDR": self.server.url, "HOME": "/nonexistent", **extra}


@pytest.fixture(scope="module")
def auth_bao() -> Iterator[AuthBao]:
    with OpenBaoServer() as server:
        root = server.hvac_client()
        root.sys.create_or_update_policy("writer", WRITER)
        for mount in ("approle", "approle-team"):
            root.sys.enable_auth_method("approle", path=mount)
            root.auth.approle.create_or_update_approle(
                "app", token_policies=["writer"], mount_point=mount
            )
        ids = {
            mount: (
                root.auth.approle.read_role_id("app", mount_point=mount)["data"]["role_id"],
                root.auth.approle.generate_secret_id("app", mount_point=mount)["data"]["secret_id"],
            )
            for mount in ("approle", "approle-team")
        }
        key = ec.generate_private_key(ec.SECP256R1())
        pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        root.sys.enable_auth_method("jwt")
        root.adapter.post("/v1/auth/jwt/config", json={"jwt_validation_pubkeys": [pem]})
        root.adapter.post(
            "/v1/auth/jwt/role/ci",
            json={
                "role_type": "jwt",
                "bound_audiences": [AUDIENCE],
                "user_claim": "sub",
                "token_policies": ["writer"],
            },
        )
        yield AuthBao(
            server=server,
            role_id=ids["approle"][0],
            secret_id=ids["approle"][1],
            other_role_id=ids["approle-team"][0],
            other_secret_id=ids["approle-team"][1],
            jwt_key=key,
        )


def _provisions(store: VaultStore, authority: Authority, uid: str) -> None:
    uri = f"vault://secret/auth/{uid}#password"
    result = provision_into_store(authority.client(), store, uri, "soc2")
    assert result.outcome == "created" and result.version == "1"
    got = store.read(parse_store_uri(uri))
    assert got is not None and got.refs is not None and got.refs.cert_id == result.cert_id


def test_approle_login_then_provision(
    auth_bao: AuthBao, authority: Authority, uid: str, tmp_path: Path
) -> None:
    env = auth_bao.env(
        VAULT_AUTH_METHOD="approle",
        VAULT_ROLE_ID=auth_bao.role_id,
        VAULT_SECRET_ID=auth_bao.secret_id,
    )
    store = VaultStore(environ=env)
    token = store._client.token
    assert token and token != auth_bao.server.token  # a token of the role, not root
    assert auth_bao.secret_id not in repr(store)
    _provisions(store, authority, uid)
    # The secret id from a file, and a method mounted at another path.
    secret_file = tmp_path / "secret-id"
    secret_file.write_text(auth_bao.other_secret_id + "\n")
    env = auth_bao.env(
        VAULT_AUTH_METHOD="approle",
        VAULT_AUTH_MOUNT="approle-team",
        VAULT_ROLE_ID=auth_bao.other_role_id,
        VAULT_SECRET_ID_FILE=str(secret_file),
    )
    _provisions(VaultStore(environ=env), authority, uid + "-file")


def test_a_wrong_secret_id_is_one_clear_line_without_the_secret(
    auth_bao: AuthBao, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    authority: Authority, tmp_path: Path,
) -> None:  # fmt: skip
    wrong = "0f1e2d3c-wrong-secret-id-4b5a69788796"
    env = auth_bao.env(
        VAULT_AUTH_METHOD="approle", VAULT_ROLE_ID=auth_bao.role_id, VAULT_SECRET_ID=wrong
    )
    with pytest.raises(StoreError) as info:
        VaultStore(environ=env)
    message = info.value.message
    assert message.startswith(f"Vault approle login failed at {auth_bao.server.url}/v1/auth/")
    assert "\n" not in message and wrong not in message and auth_bao.secret_id not in message
    # The CLI: one line on stderr, non-zero, nothing certified.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    monkeypatch.setenv("PASSGENI_CONFIG", str(cfg))
    monkeypatch.setenv("PASSGENI_URL", authority.url)
    monkeypatch.setenv("PASSGENI_API_KEY", authority.api_key)
    before = authority.client().audit(page_size=1).total
    code = main(["provision", "--preset", "soc2", "--store", "vault://secret/auth/x"])
    out, err = capsys.readouterr()
    assert code == 4 and out == ""
    assert err.startswith("passgeni: error [store_error]: Vault approle login failed")
    assert err.count("\n") == 1 and wrong not in err
    assert authority.client().audit(page_size=1).total == before


def test_jwt_login_from_a_variable_or_a_file(
    auth_bao: AuthBao, authority: Authority, uid: str, tmp_path: Path
) -> None:
    env = auth_bao.env(VAULT_AUTH_METHOD="jwt", VAULT_AUTH_ROLE="ci", VAULT_JWT=auth_bao.jwt())
    _provisions(VaultStore(environ=env), authority, uid)
    token_file = tmp_path / "ci.jwt"
    token_file.write_text(auth_bao.jwt(subject="ci-job-2"))
    env = auth_bao.env(
        VAULT_AUTH_METHOD="jwt", VAULT_AUTH_ROLE="ci", VAULT_JWT_FILE=str(token_file)
    )
    _provisions(VaultStore(environ=env), authority, uid + "-file")


def test_a_jwt_for_another_audience_is_refused_clearly(auth_bao: AuthBao) -> None:
    foreign = auth_bao.jwt(audience="someone-else")
    env = auth_bao.env(VAULT_AUTH_METHOD="jwt", VAULT_AUTH_ROLE="ci", VAULT_JWT=foreign)
    with pytest.raises(StoreError) as info:
        VaultStore(environ=env)
    message = info.value.message
    assert message.startswith("Vault jwt login failed at") and "role 'ci'" in message
    assert foreign not in message and "\n" not in message


def test_each_method_says_what_it_is_missing(tmp_path: Path) -> None:
    cases = {
        ("approle", "VAULT_ROLE_ID"): {},
        ("approle", "VAULT_SECRET_ID or VAULT_SECRET_ID_FILE"): {"VAULT_ROLE_ID": "r"},
        ("jwt", "VAULT_AUTH_ROLE"): {"VAULT_JWT": "x"},
        ("jwt", "VAULT_JWT or VAULT_JWT_FILE"): {"VAULT_AUTH_ROLE": "ci"},
        ("kubernetes", "VAULT_AUTH_ROLE"): {},
        ("ldap", "is not supported"): {},
    }
    for (method, needed), extra in cases.items():
        with pytest.raises(InvalidRequest, match=needed):
            vault_config_from_environ({"VAULT_AUTH_METHOD": method, **extra})
    # Kubernetes: the pod's service-account token unless a JWT is named; a missing file
    # is one line naming it, not a traceback.
    env = {
        "VAULT_ADDR": "http://127.0.0.1:9",
        "VAULT_AUTH_METHOD": "kubernetes",
        "VAULT_AUTH_ROLE": "payments",
        "VAULT_JWT_FILE": str(tmp_path / "absent-token"),
    }
    config = vault_config_from_environ(env)
    assert config.mount == "kubernetes" and config.role == "payments"
    with pytest.raises(InvalidRequest, match="absent-token: cannot be read"):
        VaultStore(environ=env)


def test_the_config_never_shows_a_secret() -> None:
    config = vault_config_from_environ(
        {
            "VAULT_ADDR": "https://vault.example:8200/",
            "VAULT_AUTH_METHOD": "approle",
            "VAULT_ROLE_ID": "role-1",
            "VAULT_SECRET_ID": "very-secret-id",
            "VAULT_TOKEN": "hvs.secret-token",
            "VAULT_NAMESPACE": "team-a",
        }
    )
    assert config.addr == "https://vault.example:8200" and config.namespace == "team-a"
    for text in (repr(config), str(config)):
        assert "very-secret-id" not in text and "hvs.secret-token" not in text


class _TokenReviews(http.server.BaseHTTPRequestHandler):
    """``POST /apis/authentication.k8s.io/v1/tokenreviews``, accepting one service account.

    No kube-apiserver can run here, and the kmock emulator stores a TokenReview without
    reviewing it: this one endpoint stands in for the API server OpenBao asks.
    """

    reviewed: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.reviewed.append(body["spec"]["token"])
        user = {"username": "system:serviceaccount:payments:app", "uid": "uid-1"}
        data = json.dumps({"status": {"authenticated": True, "user": user}}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_kubernetes_login_with_the_service_account_token(
    auth_bao: AuthBao, authority: Authority, uid: str, tmp_path: Path
) -> None:
    """OpenBao's real kubernetes method; the Kubernetes API's TokenReview by a stand-in."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenReviews)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = auth_bao.server.hvac_client()
        root.sys.enable_auth_method("kubernetes")
        ca = ec.generate_private_key(ec.SECP256R1())  # OpenBao wants a CA; plain HTTP here
        ca_pem = _self_signed(ca)
        root.adapter.post(
            "/v1/auth/kubernetes/config",
            json={
                "kubernetes_host": f"http://127.0.0.1:{server.server_address[1]}",
                "kubernetes_ca_cert": ca_pem,
                "disable_local_ca_jwt": True,
            },
        )
        root.adapter.post(
            "/v1/auth/kubernetes/role/payments",
            json={
                "bound_service_account_names": ["app"],
                "bound_service_account_namespaces": ["payments"],
                "token_policies": ["writer"],
            },
        )
        now = int(time.time())
        claims = {
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:payments:app",
            "kubernetes.io/serviceaccount/namespace": "payments",
            "kubernetes.io/serviceaccount/service-account.name": "app",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
            "iat": now,
            "exp": now + 300,
        }
        sa_token = pyjwt.encode(claims, ca, algorithm="ES256")
        token_file = tmp_path / "token"  # where the pod's projected token would be
        token_file.write_text(sa_token)
        env = auth_bao.env(
            VAULT_AUTH_METHOD="kubernetes",
            VAULT_AUTH_ROLE="payments",
            VAULT_JWT_FILE=str(token_file),
        )
        store = VaultStore(environ=env)
        assert _TokenReviews.reviewed == [sa_token]  # OpenBao reviewed exactly our token
        assert sa_token not in repr(store)
        _provisions(store, authority, uid)
    finally:
        server.shutdown()


def _self_signed(key: ec.EllipticCurvePrivateKey) -> str:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
