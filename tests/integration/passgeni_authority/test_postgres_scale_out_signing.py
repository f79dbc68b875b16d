"""Scale-out signing keys (issue #19 item 5): instances on separate machines (a state
directory each) and one PostgreSQL sign with one key, either a key file every machine
has or Vault/OpenBao Transit (a real OpenBao), and every certificate or status list
from either verifies against either's JWKS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passgeni_authority import (
    AuthorityService,
    AuthoritySettings,
    TransitSigner,
    jwk_thumbprint,
    public_jwk,
)
from passgeni_core import verify_certificate
from passgeni_core.crypto import STATUS_VALID, verify_status_list
from tests.support import OpenBaoServer, PostgresCluster, wait_until
from tests.support.authority import plain_session
from tests.support.authority_processes import Machines, machines
from tests.support.seeds import commitment

PUBLIC_URL = "https://authority.scale-out.test"


def _client(key: str) -> requests.Session:
    session = plain_session()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


def _create_key(deployed: Machines, user: str, signer: TransitSigner | None = None) -> str:
    """``create-key`` on the admin machine (in this process: it is quicker)."""
    settings = AuthoritySettings(
        database_url=deployed.database_url,
        state_dir=deployed.admin_state,
        public_url=PUBLIC_URL,
        signer=signer,
    )
    with AuthorityService(settings) as admin:
        return admin.create_api_key(user, rate_limit=100000).key


def _session(http: requests.Session, url: str) -> str:
    r = http.post(
        f"{url}/api/generate", json={"compliance_standard": "soc2", "seed_commitment": commitment()}
    )
    assert r.status_code == 200, r.text
    sid: str = r.json()["generation_session_id"]
    return sid


def _redeem(http: requests.Session, url: str, sid: str) -> requests.Response:
    return http.post(f"{url}/api/generate-certificate", json={"generation_session_id": sid})


def _jwks(url: str) -> dict[str, Any]:
    jwks: dict[str, Any] = plain_session().get(f"{url}/.well-known/jwks.json").json()
    return jwks


def _kid(token: str) -> str:
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def test_a_machine_without_the_key_file_is_not_ready_until_it_has_it(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    """A local key file is not shared by the database: a machine that lacks it says so
    on ``/readyz`` (the load balancer sends it nothing) and refuses to sign with a clear
    error, consuming nothing; the file copied in, it signs."""
    database_url = postgres.create_database(f"keyfile_{uuid.uuid4().hex[:8]}")
    with machines(tmp_path, database_url, public_url=PUBLIC_URL, count=1) as deployed:
        (url,) = deployed.urls
        http = _client(_create_key(deployed, "pg-keyfile"))
        r = plain_session().get(f"{url}/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": "ok", "signer": "failed: AuthorityError"}
        sid = _session(http, url)
        r = _redeem(http, url, sid)
        assert (r.status_code, r.json()["code"]) == (500, "authority_error")
        (key_file,) = (deployed.admin_state / "keys").glob("*.pem")
        assert f"signing key {key_file.stem} is not readable" in r.json()["message"]
        assert "PRIVATE KEY" not in r.text

        # The operator copies the key file to the machine (mode 0600 in a 0700 directory).
        keys = deployed.processes[0].state_dir / "keys"
        keys.mkdir(mode=0o700)
        shutil.copy2(key_file, keys / key_file.name)
        (keys / key_file.name).chmod(0o600)
        wait_until(lambda: plain_session().get(f"{url}/readyz").status_code == 200, 30, "readiness")
        r = _redeem(http, url, sid)  # the same session: nothing was consumed
        assert r.status_code == 201, r.text
        verify_certificate(r.json()["token"], _jwks(url), issuer=PUBLIC_URL)


@pytest.fixture
def transit_pair(
    postgres: PostgresCluster, openbao: OpenBaoServer, tmp_path: Path
) -> Iterator[tuple[Machines, str]]:
    import hvac.exceptions

    bao = openbao.hvac_client()
    with contextlib.suppress(hvac.exceptions.InvalidRequest):  # mounted by an earlier test
        bao.sys.enable_secrets_engine("transit", path="transit")  # the signer's mount
    key_name = f"scale-{uuid.uuid4().hex[:8]}"
    # The instances only sign (docs/deployment.md); the admin machine creates and rotates.
    bao.sys.create_or_update_policy(
        name=f"{key_name}-sign",
        policy=f'path "transit/sign/{key_name}" {{ capabilities = ["update"] }}',
    )
    bao.sys.create_or_update_policy(
        name=f"{key_name}-admin",
        policy=(
            f'path "transit/keys/{key_name}" {{ capabilities = ["create", "read", "update"] }}\n'
            f'path "transit/keys/{key_name}/rotate" {{ capabilities = ["update"] }}'
        ),
    )
    tokens = {
        role: bao.auth.token.create(policies=[f"{key_name}-{role}"], ttl="1h")["auth"][
            "client_token"
        ]
        for role in ("sign", "admin")
    }
    env = {
        "PASSGENI_TRANSIT_URL": openbao.url,
        "PASSGENI_TRANSIT_TOKEN": tokens["sign"],
        "PASSGENI_TRANSIT_KEY": key_name,
    }
    database_url = postgres.create_database(f"transit_{uuid.uuid4().hex[:8]}")
    with machines(
        tmp_path,
        database_url,
        public_url=PUBLIC_URL,
        env=env,
        admin_env={"PASSGENI_TRANSIT_TOKEN": tokens["admin"]},
    ) as deployed:
        yield deployed, key_name


def test_instances_signing_with_transit_verify_against_each_others_jwks(
    transit_pair: tuple[Machines, str], openbao: OpenBaoServer, tmp_path: Path
) -> None:
    deployed, key_name = transit_pair
    a, b = deployed.urls
    transit = openbao.hvac_client().secrets.transit

    def transit_kids() -> list[str]:
        keys = transit.read_key(name=key_name)["data"]["keys"]
        kids = []
        for version in sorted(keys, key=int):
            public = serialization.load_pem_public_key(keys[version]["public_key"].encode())
            assert isinstance(public, ec.EllipticCurvePublicKey)
            kids.append(jwk_thumbprint(public_jwk(public)))
        return kids

    # One key, Transit's: made once (on the admin machine), published by both.
    jwks = _jwks(a)
    assert jwks == _jwks(b) and [k["kid"] for k in jwks["keys"]] == transit_kids()
    assert not list(tmp_path.rglob("*.pem"))  # no private key on any machine

    signer = TransitSigner(
        openbao.url, deployed.admin_env["PASSGENI_TRANSIT_TOKEN"], key_name=key_name
    )
    http = _client(_create_key(deployed, "pg-transit", signer))
    certs = {}
    for url in (a, b):
        # A session opened on one instance, redeemed on the other.
        r = _redeem(http, b if url == a else a, _session(http, url))
        assert r.status_code == 201, r.text
        certs[url] = r.json()
        for other in (a, b):
            verified = verify_certificate(r.json()["token"], _jwks(other), issuer=PUBLIC_URL)
            ref = verified.claims.status
            assert ref is not None
            status = plain_session().get(f"{other}/status/{ref.uri.rsplit('/', 1)[1]}").text
            for jwks_of in (a, b):
                listed = verify_status_list(status, _jwks(jwks_of), issuer=PUBLIC_URL, uri=ref.uri)
                assert listed.get(ref.idx) == STATUS_VALID

    # Rotation from the admin machine: a new Transit version, the new kid on both.
    rotated = deployed.cli("rotate-keys", "--json")
    new_kid = json.loads(rotated.stdout)["active"]
    assert transit_kids()[-1] == new_kid and len(transit_kids()) == 2
    for url in (a, b):
        assert new_kid in [k["kid"] for k in _jwks(url)["keys"]]
        # Each instance signs with the new key within its key cache (5 s).
        wait_until(
            lambda url=url: (
                _kid(_redeem(http, url, _session(http, url)).json()["token"]) == new_kid
            ),
            30,
            f"{url} signing with {new_kid}",
        )
        for cert in certs.values():  # certificates of the old key still verify
            verify_certificate(cert["token"], _jwks(url), issuer=PUBLIC_URL)
    # The Transit tokens reached no log and no output.
    tokens = {deployed.env["PASSGENI_TRANSIT_TOKEN"], deployed.admin_env["PASSGENI_TRANSIT_TOKEN"]}
    for text in [log.read_text() for log in tmp_path.glob("*.log")] + [rotated.stderr]:
        assert not any(token in text for token in tokens)
