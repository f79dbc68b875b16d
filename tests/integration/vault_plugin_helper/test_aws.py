"""The aws-sm:// backend against a real moto server, with the real authority."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from passgeni_core import (
    CertificateRefs,
    StoreConflict,
    StoreLimitExceeded,
    StoreUnavailable,
    WritePlan,
    decode_seed,
    open_store,
    parse_store_uri,
    provision_into_store,
    verify_certificate,
    verify_provenance,
)
from tests.integration.vault_plugin_helper.fixtures import Authority, set_aws_env
from tests.support import MotoServer
from tests.support.proofs import aws_proof
from vault_plugin_helper.aws import SecretsManagerStore, validate_tag

pytestmark = pytest.mark.usefixtures("aws_env")


def current(sm: Any, name: str) -> tuple[str, dict[str, Any]]:
    got = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    return got["VersionId"], json.loads(got["SecretString"])


def tags(sm: Any, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name).get("Tags", [])}


def test_round_trip_credential_and_certificate_refs(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    uri = f"aws-sm://prod/{uid}/db#password"
    store = open_store(uri)  # the SDK's default chain: AWS_REGION, AWS_ENDPOINT_URL, keys
    assert isinstance(store, SecretsManagerStore)
    assert "testing" not in repr(store)
    client = authority.client()
    result = provision_into_store(client, store, uri, "pci-dss")
    assert result.outcome == "created"

    sm = moto_server.boto3_client()
    version_id, value = current(sm, f"prod/{uid}/db")
    assert version_id == result.version
    assert set(value) == {"password"}  # the value workloads read: the credential only
    proof = aws_proof(sm, f"prod/{uid}/db")
    assert proof["cert_id"] == result.cert_id and proof["cert_url"] == result.cert_url
    assert proof["version"] == version_id
    assert tags(sm, f"prod/{uid}/db") == {
        "passgeni-cert-url": result.cert_url,
        "passgeni-cert-id": result.cert_id,
        "passgeni-standard": "PCI-DSS",
        "passgeni-expires-at": result.public_dict()["expires_at"],
        "passgeni-kv-version": version_id,
    }
    record = client.get_certificate(result.cert_id)
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    assert cert.claims.target is not None
    assert cert.claims.target.to_dict() == {
        "system": "aws-sm",
        "path": f"prod/{uid}/db#password",
        "version": version_id,
    }
    verify_provenance(cert, value["password"], decode_seed(proof["seed"]))
    back = store.read(parse_store_uri(uri))
    assert back is not None and back.refs is not None and back.version == version_id


def test_existing_secret_keeps_fields_and_tags_and_old_version(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    sm = moto_server.boto3_client()
    name = f"app/{uid}"
    first = sm.create_secret(
        Name=name,
        SecretString=json.dumps({"username": "svc", "password": "old-one"}),
        Tags=[{"Key": "owner", "Value": "team-a"}],
    )["VersionId"]
    client = authority.client()
    store = open_store("aws-sm://")
    # An uncertified value is somebody's password: replacing it needs --rotate.
    with pytest.raises(StoreConflict, match="rotat"):
        provision_into_store(client, store, f"aws-sm://{name}", "soc2")
    result = provision_into_store(client, store, f"aws-sm://{name}", "soc2", rotate=True)
    version_id, value = current(sm, name)
    assert version_id == result.version != first
    assert value["username"] == "svc" and value["password"] != "old-one"
    assert tags(sm, name)["owner"] == "team-a"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[first] == ["AWSPREVIOUS"] and stages[version_id] == ["AWSCURRENT"]
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["password"] == "old-one"
    # Idempotent: a re-run changes nothing.
    again = provision_into_store(client, store, f"aws-sm://{name}", "soc2")
    assert again.outcome == "unchanged" and current(sm, name)[0] == version_id


def test_tag_values_are_validated_because_moto_does_not() -> None:
    validate_tag("passgeni-cert-url", "https://pass.example/cert/pg_Ab-1_x", where="t")
    validate_tag("passgeni-expires-at", "2027-11-22T03:00:00Z", where="t")
    validate_tag("k", "Zürich user@example.com +=._:/-", where="t")
    with pytest.raises(StoreLimitExceeded, match="256"):
        validate_tag("passgeni-cert-url", "https://a/" + "x" * 250, where="t")
    for bad in ("https://a/cert/1?x=1", "a#b", "semi;colon", "tab\there", "new\nline", "x%20"):
        with pytest.raises(StoreLimitExceeded, match="letters, digits"):
            validate_tag("passgeni-cert-url", bad, where="t")
    with pytest.raises(StoreLimitExceeded, match="reserved"):
        validate_tag("aws:thing", "v", where="t")
    store = SecretsManagerStore(region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    plan = WritePlan(uri=parse_store_uri("aws-sm://x"), current=None, next_version="v")
    with pytest.raises(StoreLimitExceeded):
        store.check(plan, CertificateRefs(cert_id="pg_1", cert_url="https://a/cert/1?q"))


def test_tag_count_limit_refused_before_certification(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    sm = moto_server.boto3_client()
    sm.create_secret(
        Name=f"full/{uid}",
        SecretString="{}",
        Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(48)],
    )
    client = authority.client()
    before = client.audit(page_size=1).total
    with pytest.raises(StoreLimitExceeded, match="50"):
        provision_into_store(client, open_store("aws-sm://"), f"aws-sm://full/{uid}", "soc2")
    assert client.audit(page_size=1).total == before


def test_non_json_secret_string_is_never_overwritten(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    sm = moto_server.boto3_client()
    sm.create_secret(Name=f"plain/{uid}", SecretString="just-a-password")
    with pytest.raises(StoreConflict, match="JSON"):
        provision_into_store(
            authority.client(),
            open_store("aws-sm://"),
            f"aws-sm://plain/{uid}",
            "soc2",
            rotate=True,
        )
    assert sm.get_secret_value(SecretId=f"plain/{uid}")["SecretString"] == "just-a-password"


def test_concurrent_writer_wins_and_our_certificate_is_revoked(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    sm = moto_server.boto3_client()
    name = f"race/{uid}"
    sm.create_secret(Name=name, SecretString=json.dumps({"password": "v1"}))
    client = authority.client()

    def other_writer(step: str) -> None:
        if step == "write":
            sm.put_secret_value(SecretId=name, SecretString=json.dumps({"password": "theirs"}))

    with pytest.raises(StoreConflict) as info:
        provision_into_store(
            client, open_store("aws-sm://"), f"aws-sm://{name}", "soc2", rotate=True,
            before_write=other_writer,
        )  # fmt: skip
    assert "revoked (reason: not stored)" in info.value.message
    assert current(sm, name)[1] == {"password": "theirs"}
    cert_id = info.value.message.split("certificate ")[1].split(" ")[0]
    assert client.get_certificate(cert_id).revocation_reason == "not stored"


@pytest.fixture
def own_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A private moto server this test may pause."""
    with MotoServer() as moto:
        set_aws_env(monkeypatch, moto)
        yield moto


def test_store_hangs_after_certification(own_moto: MotoServer, authority: Authority) -> None:
    """Store down after certification: old credential current, certificate revoked, re-run works."""
    sm = own_moto.boto3_client()
    sm.create_secret(Name="svc/api", SecretString=json.dumps({"password": "old"}))
    store = SecretsManagerStore(read_timeout=1.0, connect_timeout=1.0, max_attempts=1)
    client = authority.client()

    def hang(step: str) -> None:
        if step == "write":
            own_moto.pause()

    try:
        with pytest.raises(StoreUnavailable) as info:
            provision_into_store(
                client, store, "aws-sm://svc/api", "soc2", rotate=True, before_write=hang
            )
    finally:
        own_moto.resume()
    message = info.value.message
    assert (
        "the new credential was not stored" in message
        and "previous credential is unchanged" in message
    )
    cert_id = message.split("certificate ")[1].split(" ")[0]
    assert client.get_certificate(cert_id).revocation_reason == "not stored"
    assert current(sm, "svc/api")[1] == {"password": "old"}
    # Re-running the same command completes the job.
    done = provision_into_store(client, store, "aws-sm://svc/api", "soc2", rotate=True)
    version_id, value = current(sm, "svc/api")
    assert set(value) == {"password"}
    assert version_id == done.version and aws_proof(sm, "svc/api")["cert_id"] == done.cert_id


def test_debug_logging_never_shows_a_password(
    authority: Authority, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = authority.client()
    store = open_store("aws-sm://")
    result = provision_into_store(client, store, f"aws-sm://log/{uid}", "soc2")
    again = provision_into_store(client, store, f"aws-sm://log/{uid}", "soc2")  # reads it back
    assert again.outcome == "unchanged" and result.credential is not None
    assert "botocore" in caplog.text  # botocore did log at DEBUG
    assert result.credential.password not in caplog.text
    assert json.dumps(result.credential.password)[1:-1] not in caplog.text


def test_an_inline_credential_proves_scans_and_is_migrated_on_rotation(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    """A credential stored before proof records (seed and references inside the value)."""
    from passgeni_core import scan
    from passgeni_core.workflows import rotate

    name = f"legacy/{uid}/db"
    uri = f"aws-sm://{name}#password"
    client = authority.client()
    sm = moto_server.boto3_client()
    made = provision_into_store(
        client, SecretsManagerStore(client=sm, proof_location="inline"), uri, "soc2"
    )
    _, value = current(sm, name)
    assert set(value) == {
        "password",
        "password.passgeni-seed",
        "password.passgeni-cert-id",
        "password.passgeni-cert-url",
    }
    store = open_store(uri)
    before = store.read(parse_store_uri(uri))
    assert before is not None and before.proof_layout == "inline"
    report = scan(client, [uri])
    assert report.ok and [e.status for e in report.entries] == ["valid"]
    rotated = rotate(client, store, uri, "soc2")
    _, value = current(sm, name)
    assert set(value) == {"password"}  # migrated
    assert aws_proof(sm, name)["cert_id"] == rotated.cert_id
    assert client.get_certificate(made.cert_id).status == "revoked"
    report = scan(client, [uri])
    assert report.ok and [e.status for e in report.entries] == ["valid"]
