"""The AWS Secrets Manager rotation handler, step by step, on real servers.

moto server (Secrets Manager + a Lambda function so ``rotate_secret`` stages
an ``AWSPENDING`` version exactly as AWS does before calling the handler), a
throwaway PostgreSQL 15 cluster that really checks passwords (SCRAM for every
role but the superuser), and the real authority. Each step is also re-run to
prove it is idempotent; the ``testSecret`` failure path revokes the pending
certificate and leaves the current credential working (checked by logging in
with psycopg).
"""

from __future__ import annotations

import dataclasses
import secrets

import psycopg
import pytest

from passgeni_core import AuthorityClient, decode_seed, verify_certificate, verify_provenance
from passgeni_core.workflows import TargetLoginFailed
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.integration.vault_plugin_helper.rotation_support import Rotation, login, superuser
from tests.support import MotoServer, PostgresCluster
from tests.support.proofs import aws_proof_for
from vault_plugin_helper.rotation import RotationConfig, RotationError, handler, run_step
from vault_plugin_helper.targets import PostgresTarget, scram_sha256_verifier

pytestmark = pytest.mark.timeout(120)


def audit_total(client: AuthorityClient) -> int:  # counts every certificate of the tenant
    return client.audit(page_size=1).total


def test_four_steps_each_rerun(
    rotation: Rotation,
    config: RotationConfig,
    authority: Authority,  # noqa: F811
) -> None:
    client = authority.client(issuer=authority.embedded.issuer)
    sm = rotation.sm
    issued_before = audit_total(client)

    run_step(rotation.event("createSecret"), sm=sm, config=config)
    pending = rotation.value("AWSPENDING", rotation.token)
    new = pending["password"]
    assert new != rotation.first
    # The target's forbidden characters were excluded from the generated password.
    assert not set(new) & set("@/:?#%&\"'\\")
    # The pending value holds the credential only; its proof is in passgeni-proof/NAME.
    assert not [k for k in pending if ".passgeni-" in k]
    proof = aws_proof_for(sm, rotation.arn, rotation.token)
    cert_id = proof["cert_id"]
    assert proof["cert_url"].endswith(cert_id)
    assert pending["username"] == rotation.role and pending["engine"] == "postgres"
    # The certificate is bound to this exact credential, and names the version.
    record = client.get_certificate(cert_id)
    verified = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    verify_provenance(verified, new, decode_seed(proof["seed"]))
    assert record.target is not None and record.target.version == rotation.token
    assert record.target.system == "aws-sm"
    assert audit_total(client) == issued_before + 1

    run_step(rotation.event("createSecret"), sm=sm, config=config)  # re-run: nothing new
    assert rotation.value("AWSPENDING", rotation.token) == pending
    assert audit_total(client) == issued_before + 1

    assert login(rotation.pg, rotation.role, rotation.first)
    run_step(rotation.event("setSecret"), sm=sm, config=config)
    assert login(rotation.pg, rotation.role, new)
    assert not login(rotation.pg, rotation.role, rotation.first)
    run_step(rotation.event("setSecret"), sm=sm, config=config)  # re-run: already works
    assert login(rotation.pg, rotation.role, new)

    run_step(rotation.event("testSecret"), sm=sm, config=config)
    run_step(rotation.event("testSecret"), sm=sm, config=config)

    old_version = next(v for v, s in rotation.stages().items() if "AWSCURRENT" in s)
    run_step(rotation.event("finishSecret"), sm=sm, config=config)
    stages = rotation.stages()
    assert "AWSCURRENT" in stages[rotation.token]
    assert "AWSPREVIOUS" in stages[old_version]
    assert rotation.value("AWSCURRENT")["password"] == new
    tags = rotation.tags()
    assert tags["passgeni-cert-id"] == cert_id
    assert tags["passgeni-cert-url"] == record.cert_url
    assert tags["passgeni-standard"] == "SOC2"
    assert tags["passgeni-expires-at"].endswith("Z")
    run_step(rotation.event("finishSecret"), sm=sm, config=config)  # re-run: no change
    assert rotation.stages() == stages
    assert audit_total(client) == issued_before + 1
    assert client.get_certificate(cert_id).status == "valid"


def test_handler_from_environment_then_next_rotation_revokes_previous(
    rotation: Rotation,
    authority: Authority,  # noqa: F811
    moto_server: MotoServer,
    lambda_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``handler(event, context)`` configured only by environment variables, twice."""
    for name, value in {
        "PASSGENI_PRESET": "pci-dss",
        "PASSGENI_URL": authority.url,
        "PASSGENI_ISSUER": authority.embedded.issuer,
        "PASSGENI_API_KEY": authority.api_key,
        "PASSGENI_LENGTH": "24",
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_REGION": moto_server.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler(rotation.event(step), None)
    first = rotation.value("AWSCURRENT")
    assert len(first["password"]) == 24
    assert login(rotation.pg, rotation.role, first["password"])
    client = authority.client(issuer=authority.embedded.issuer)
    first_cert = aws_proof_for(rotation.sm, rotation.arn)["cert_id"]
    assert client.get_certificate(first_cert).compliance_standard == "PCI-DSS"

    # The next scheduled rotation: a new token; the previous certificate is revoked at the end.
    rotation.token = secrets.token_hex(16)
    rotation.sm.rotate_secret(
        SecretId=rotation.arn, ClientRequestToken=rotation.token, RotationLambdaARN=lambda_arn
    )
    assert rotation.stages()[rotation.token] == ["AWSPENDING"]
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler(rotation.event(step), None)
    second = rotation.value("AWSCURRENT")
    assert second["password"] != first["password"]
    assert login(rotation.pg, rotation.role, second["password"])
    assert not login(rotation.pg, rotation.role, first["password"])
    previous = client.get_certificate(first_cert)
    assert previous.status == "revoked" and previous.revocation_reason == "rotated"


def test_test_secret_failure_revokes_pending_and_current_keeps_working(
    rotation: Rotation,
    config: RotationConfig,
    authority: Authority,  # noqa: F811
) -> None:
    sm = rotation.sm
    client = authority.client(issuer=authority.embedded.issuer)
    current_before = rotation.value("AWSCURRENT")
    run_step(rotation.event("createSecret"), sm=sm, config=config)
    run_step(rotation.event("setSecret"), sm=sm, config=config)
    pending = rotation.value("AWSPENDING", rotation.token)
    cert_id = aws_proof_for(sm, rotation.arn, rotation.token)["cert_id"]
    # Injected failure: the database lost the change (failover to a replica that
    # never got it): the role is back on its current password.
    with superuser(rotation.pg) as conn:
        conn.execute(
            f"ALTER ROLE \"{rotation.role}\" PASSWORD '{scram_sha256_verifier(rotation.first)}'"
        )

    with pytest.raises(TargetLoginFailed) as caught:
        run_step(rotation.event("testSecret"), sm=sm, config=config)
    message = str(caught.value)
    assert "AWSCURRENT is unchanged" in message and cert_id in message
    assert pending["password"] not in message and rotation.first not in message
    record = client.get_certificate(cert_id)
    assert record.status == "revoked"
    assert record.revocation_reason == "rotation test failed"
    # The current credential still works, and it is still AWSCURRENT.
    assert rotation.value("AWSCURRENT") == current_before
    assert login(rotation.pg, rotation.role, current_before["password"])

    # Re-running testSecret fails the same way (idempotent revocation, no new certificate).
    issued = audit_total(client)
    with pytest.raises(TargetLoginFailed):
        run_step(rotation.event("testSecret"), sm=sm, config=config)
    assert audit_total(client) == issued
    # finishSecret refuses to promote a version whose certificate is revoked.
    with pytest.raises(RotationError, match="revoked"):
        run_step(rotation.event("finishSecret"), sm=sm, config=config)
    assert rotation.value("AWSCURRENT") == current_before
    assert login(rotation.pg, rotation.role, current_before["password"])


def test_guards_rotation_disabled_and_unstaged_token(
    rotation: Rotation,
    config: RotationConfig,
    moto_server: MotoServer,
    uid: str,  # noqa: F811
) -> None:
    plain = rotation.sm.create_secret(Name=f"plain/{uid}", SecretString="{}")
    event = {"SecretId": plain["ARN"], "ClientRequestToken": "x" * 32, "Step": "createSecret"}
    with pytest.raises(RotationError, match="not enabled for rotation"):
        run_step(event, sm=rotation.sm, config=config)
    with pytest.raises(RotationError, match="no stage for rotation"):
        run_step(
            {"SecretId": rotation.arn, "ClientRequestToken": "y" * 32, "Step": "setSecret"},
            sm=rotation.sm,
            config=config,
        )
    with pytest.raises(RotationError, match="Step"):
        run_step({"SecretId": rotation.arn}, sm=rotation.sm, config=config)
    with pytest.raises(RotationError, match="PASSGENI_PRESET"):
        RotationConfig.from_environ({})


def test_postgres_target_quotes_identifiers_and_hides_secrets(pg: PostgresCluster) -> None:
    role = 'we"ird role-' + secrets.token_hex(2)
    with superuser(pg) as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role)))
    target = PostgresTarget.from_options(
        {
            "host": "127.0.0.1",
            "port": str(pg.port),
            "dbname": "postgres",
            "role": role,
            "admin_user": "postgres",
        }
    )
    password = "Abc-123_xyz+Q~" + secrets.token_hex(4)
    target.set_password(password)
    target.test_password(password)
    assert login(pg, role, password)
    with pytest.raises(TargetLoginFailed):
        target.test_password(password + "x")
    assert password not in repr(target)
    # The server stored the SCRAM verifier computed client-side, never the plaintext.
    with superuser(pg) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert stored is not None and stored[0].startswith("SCRAM-SHA-256$4096:")
    secret_target = PostgresTarget.from_options(
        {
            "conninfo": f"host=127.0.0.1 port={pg.port} dbname=postgres",
            "role": role,
            "admin_user": role,
            "admin_password": password,
        }
    )
    assert password not in repr(secret_target) and password not in secret_target.describe()
    with pytest.raises(Exception, match="unknown option"):
        PostgresTarget.from_options({"role": "x", "pasword": "typo"})


def test_an_inline_secret_is_rotated_and_migrated(
    rotation: Rotation,
    config: RotationConfig,
    authority: Authority,  # noqa: F811
    lambda_arn: str,
) -> None:
    """A secret rotated before proof records (``PASSGENI_PROOF_LOCATION=inline``: the seed
    and references inside the value): the next rotation reads its certificate there,
    revokes it as rotated, and leaves a value holding the credential only."""
    client = authority.client(issuer=authority.embedded.issuer)
    inline = dataclasses.replace(config, proof_location="inline")
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        run_step(rotation.event(step), sm=rotation.sm, config=inline)
    old = rotation.value("AWSCURRENT")
    assert {"password.passgeni-seed", "password.passgeni-cert-id"} <= set(old)
    old_cert = old["password.passgeni-cert-id"]
    assert client.get_certificate(old_cert).status == "valid"

    rotation.token = secrets.token_hex(16)
    rotation.sm.rotate_secret(
        SecretId=rotation.arn, ClientRequestToken=rotation.token, RotationLambdaARN=lambda_arn
    )
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        run_step(rotation.event(step), sm=rotation.sm, config=config)
    new = rotation.value("AWSCURRENT")
    assert not [k for k in new if ".passgeni-" in k]  # migrated
    proof = aws_proof_for(rotation.sm, rotation.arn, rotation.token)
    assert client.get_certificate(proof["cert_id"]).status == "valid"
    assert rotation.tags()["passgeni-cert-id"] == proof["cert_id"]
    previous = client.get_certificate(old_cert)
    assert previous.status == "revoked" and previous.revocation_reason == "rotated"
