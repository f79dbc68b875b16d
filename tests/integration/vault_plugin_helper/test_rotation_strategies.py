"""Rotation strategies and failure paths on real servers (moto, PostgreSQL, the authority).

* alternating-users: the pending version names the other role (``X`` <-> ``X_clone``),
  the admin of the master secret creates the clone (granted ``X``'s membership) and sets
  its password; the current role keeps working until the next rotation.
* setSecret that cannot apply the password revokes the pending certificate.
* finishSecret promotes on the verified certificate, not on what the JSON claims.
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest

from passgeni_core import open_store, provision_into_store, verify_certificate
from passgeni_core.workflows import TargetLoginFailed
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.integration.vault_plugin_helper.rotation_support import Rotation, login, superuser
from tests.integration.vault_plugin_helper.test_aws import set_aws_env
from tests.support import MotoServer, PostgresCluster
from tests.support.proofs import aws_proof_for, inline_fields
from vault_plugin_helper.rotation import RotationConfig, RotationError, run_step

pytestmark = pytest.mark.timeout(120)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def alternating(config: RotationConfig) -> RotationConfig:
    return RotationConfig(
        preset=config.preset,
        url=config.url,
        api_key=config.api_key,
        issuer=config.issuer,
        strategy="alternating-users",
    )


def master_secret(moto: MotoServer, pg: PostgresCluster, uid: str) -> tuple[str, str]:
    """An admin role (CREATEROLE, password-checked) and the secret holding it."""
    admin, password = f"admin_{uid}", "Admin-Pw-" + secrets.token_hex(8)
    with superuser(pg) as conn:
        conn.execute(f"CREATE ROLE \"{admin}\" LOGIN CREATEROLE PASSWORD '{password}'")
    created = moto.boto3_client().create_secret(
        Name=f"master/{uid}", SecretString=json.dumps({"username": admin, "password": password})
    )
    return str(created["ARN"]), password


def member_of(pg: PostgresCluster, role: str, group: str) -> bool:
    with superuser(pg) as conn:
        row = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (role, group)).fetchone()
    return bool(row and row[0])


def test_alternating_users_two_rotations(
    moto_server: MotoServer,
    pg: PostgresCluster,
    lambda_arn: str,
    uid: str,
    config: RotationConfig,
    authority: Authority,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    master, admin_password = master_secret(moto_server, pg, uid)
    rot = Rotation(moto_server, pg, lambda_arn, uid, extra={"masterarn": master})
    cfg = alternating(config)
    client = authority.client(issuer=authority.embedded.issuer)
    clone = rot.role + "_clone"

    for step in STEPS:
        run_step(rot.event(step), sm=rot.sm, config=cfg)
        run_step(rot.event(step), sm=rot.sm, config=cfg)  # each step re-runnable
    first = rot.value("AWSCURRENT")
    assert first["username"] == clone and first["masterarn"] == master
    assert login(pg, clone, first["password"])
    assert login(pg, rot.role, rot.first)  # the other role was not cut off
    assert member_of(pg, clone, rot.role)  # the clone has the original's privileges
    cert = client.get_certificate(aws_proof_for(rot.sm, rot.arn)["cert_id"])
    verified = verify_certificate(cert.token, client.jwks(), issuer=client.issuer)
    assert verified.claims.target is not None and verified.claims.target.version == rot.token
    assert rot.tags()["passgeni-cert-id"] == cert.cert_id

    # The next rotation goes back to the original role, with a new password for it.
    rot.token = secrets.token_hex(16)
    rot.sm.rotate_secret(
        SecretId=rot.arn, ClientRequestToken=rot.token, RotationLambdaARN=lambda_arn
    )
    for step in STEPS:
        run_step(rot.event(step), sm=rot.sm, config=cfg)
    second = rot.value("AWSCURRENT")
    assert second["username"] == rot.role and second["password"] != rot.first
    assert login(pg, rot.role, second["password"])
    assert not login(pg, rot.role, rot.first)
    assert login(pg, clone, first["password"])  # AWSPREVIOUS still works until next time
    assert rot.value("AWSPREVIOUS")["username"] == clone
    assert client.get_certificate(cert.cert_id).revocation_reason == "rotated"
    # Logs (botocore's DEBUG included) name ARNs and certificate ids, never a password.
    for secret in (admin_password, first["password"], second["password"], rot.first):
        assert secret not in caplog.text


def test_alternating_users_without_a_master_secret_revokes_at_set_secret(
    moto_server: MotoServer,
    pg: PostgresCluster,
    lambda_arn: str,
    uid: str,
    config: RotationConfig,
    authority: Authority,
) -> None:
    rot = Rotation(moto_server, pg, lambda_arn, uid)
    cfg = alternating(config)
    run_step(rot.event("createSecret"), sm=rot.sm, config=cfg)
    pending = rot.value("AWSPENDING", rot.token)
    with pytest.raises(RotationError, match="masterarn") as caught:
        run_step(rot.event("setSecret"), sm=rot.sm, config=cfg)
    cert_id = aws_proof_for(rot.sm, rot.arn, rot.token)["cert_id"]
    assert f"certificate {cert_id} was revoked" in str(caught.value)
    client = authority.client(issuer=authority.embedded.issuer)
    assert client.get_certificate(cert_id).revocation_reason == "not applied to target"
    assert not login(pg, rot.role + "_clone", pending["password"])


def test_set_secret_failure_revokes_the_pending_certificate(
    rotation: Rotation, config: RotationConfig, authority: Authority
) -> None:
    run_step(rotation.event("createSecret"), sm=rotation.sm, config=config)
    pending = rotation.value("AWSPENDING", rotation.token)
    cert_id = aws_proof_for(rotation.sm, rotation.arn, rotation.token)["cert_id"]
    # Someone changed the role's password by hand: neither AWSCURRENT's nor AWSPREVIOUS's
    # password logs in, so the new one cannot be applied.
    with superuser(rotation.pg) as conn:
        conn.execute(f"ALTER ROLE \"{rotation.role}\" PASSWORD 'Hand-Set-{secrets.token_hex(6)}'")
    with pytest.raises(TargetLoginFailed) as caught:
        run_step(rotation.event("setSecret"), sm=rotation.sm, config=config)
    message = str(caught.value)
    assert f"certificate {cert_id} was revoked" in message
    assert pending["password"] not in message and rotation.first not in message
    client = authority.client(issuer=authority.embedded.issuer)
    record = client.get_certificate(cert_id)
    assert record.status == "revoked" and record.revocation_reason == "not applied to target"
    with pytest.raises(RotationError, match="revoked"):
        run_step(rotation.event("finishSecret"), sm=rotation.sm, config=config)
    assert rotation.value("AWSCURRENT")["password"] == rotation.first


def test_finish_secret_refuses_a_valid_certificate_of_another_secret(
    rotation: Rotation,
    config: RotationConfig,
    authority: Authority,
    moto_server: MotoServer,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pending JSON points at a real, valid certificate, bound to its password: but
    for another secret. The authority's record says "valid"; the verified claims say no."""
    set_aws_env(monkeypatch, moto_server)
    client = authority.client(issuer=authority.embedded.issuer)
    other = provision_into_store(client, open_store("aws-sm://"), f"aws-sm://other/{uid}", "soc2")
    assert client.get_certificate(other.cert_id).status == "valid"
    borrowed = json.loads(
        rotation.sm.get_secret_value(SecretId=f"other/{uid}", VersionStage="AWSCURRENT")[
            "SecretString"
        ]
    )
    # Copied with its proof, in the inline layout (read as credentials stored before).
    borrowed.update(inline_fields(aws_proof_for(rotation.sm, f"other/{uid}")))
    forged = {**rotation.value("AWSCURRENT"), **borrowed}
    rotation.sm.put_secret_value(
        SecretId=rotation.arn,
        ClientRequestToken=rotation.token,
        SecretString=json.dumps(forged),
        VersionStages=["AWSPENDING"],
    )
    with pytest.raises(RotationError, match="AWSCURRENT was not moved"):
        run_step(rotation.event("finishSecret"), sm=rotation.sm, config=config)
    assert "AWSCURRENT" not in rotation.stages()[rotation.token]
    assert rotation.value("AWSCURRENT")["password"] == rotation.first
