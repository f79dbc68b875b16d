"""aws-sm:// against moto server: KMS keys for new secrets, secrets addressed by ARN
(calls in the ARN's region), and the store option through the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from passgeni_core import (
    InvalidRequest,
    StoreError,
    open_store,
    parse_store_uri,
    provision_into_store,
    store_settings,
    verify_certificate,
)
from passgeni_core.cli import main
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.support import MotoServer
from vault_plugin_helper.aws import SecretsManagerStore

pytestmark = pytest.mark.usefixtures("aws_env")


def kms_key(moto: MotoServer) -> dict[str, Any]:
    meta: dict[str, Any] = moto.boto3_client("kms").create_key(Description="passgeni test")[
        "KeyMetadata"
    ]
    return meta


def test_a_new_secret_is_encrypted_with_the_chosen_kms_key(
    moto_server: MotoServer, authority: Authority, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sm = moto_server.boto3_client()
    client = authority.client()
    key = kms_key(moto_server)

    # The option, by key ARN.
    store = open_store(f"aws-sm://kms/{uid}/a", kms_key_id=key["Arn"])
    result = provision_into_store(client, store, f"aws-sm://kms/{uid}/a", "soc2")
    assert result.outcome == "created"
    assert sm.describe_secret(SecretId=f"kms/{uid}/a")["KmsKeyId"] == key["Arn"]

    # The environment variable, by key id: every adapter that opens the store gets it.
    monkeypatch.setenv("PASSGENI_AWS_KMS_KEY_ID", key["KeyId"])
    store = open_store(f"aws-sm://kms/{uid}/b")
    assert isinstance(store, SecretsManagerStore) and store.kms_key_id == key["KeyId"]
    provision_into_store(client, store, f"aws-sm://kms/{uid}/b", "soc2")
    assert sm.describe_secret(SecretId=f"kms/{uid}/b")["KmsKeyId"] == key["KeyId"]

    # Only on create_secret: an existing secret keeps its own key when it is rotated.
    other = kms_key(moto_server)
    store = open_store(f"aws-sm://kms/{uid}/a", kms_key_id=other["Arn"])
    again = provision_into_store(client, store, f"aws-sm://kms/{uid}/a", "soc2", rotate=True)
    assert again.outcome == "rotated"
    assert sm.describe_secret(SecretId=f"kms/{uid}/a")["KmsKeyId"] == key["Arn"]

    # Without one, AWS's default (no KmsKeyId sent).
    monkeypatch.delenv("PASSGENI_AWS_KMS_KEY_ID")
    provision_into_store(client, open_store("aws-sm://"), f"aws-sm://kms/{uid}/c", "soc2")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=f"kms/{uid}/c")


def test_the_cli_passes_kms_key_id_as_a_store_option(
    moto_server: MotoServer, uid: str, capsys: pytest.CaptureFixture[str], passgeni_env: None
) -> None:
    key = kms_key(moto_server)
    uri = f"aws-sm://cli/{uid}#password"
    code = main(
        ["provision", "--preset", "soc2", "--store", uri, "--store-option",
         f"kms_key_id={key['Arn']}", "--json"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == "created" and "password" not in out
    described = moto_server.boto3_client().describe_secret(SecretId=f"cli/{uid}")
    assert described["KmsKeyId"] == key["Arn"]

    # A name the backend does not take: one line, exit non-zero, nothing written.
    code = main(
        ["provision", "--preset", "soc2", "--store", f"aws-sm://cli/{uid}-x", "--store-option",
         "kms_keyid=x"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "kms_key_id" in err and "Traceback" not in err
    with pytest.raises(InvalidRequest, match="kms_key_id, region_name"):
        store_settings("aws-sm", {"kms": "x"})


def test_a_secret_addressed_by_its_arn_in_another_region(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    """The store's region is us-east-1 (AWS_REGION); the secret lives in eu-west-1."""
    kwargs = {**moto_server.client_kwargs(), "region_name": "eu-west-1"}
    import boto3

    eu = boto3.session.Session().client("secretsmanager", **kwargs)
    created = eu.create_secret(
        Name=f"arn/{uid}/db", SecretString=json.dumps({"username": "app", "password": "old"})
    )
    arn = created["ARN"]
    assert ":eu-west-1:" in arn and parse_store_uri(f"aws-sm://{arn}").location == arn
    client = authority.client()
    store = open_store(f"aws-sm://{arn}")
    assert isinstance(store, SecretsManagerStore) and store.region == "us-east-1"

    # An uncertified password is there: replacing it is a rotation.
    result = provision_into_store(client, store, f"aws-sm://{arn}#password", "soc2", rotate=True)
    assert result.outcome == "rotated"
    value = json.loads(eu.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    assert value["username"] == "app" and value["password"] != "old"
    assert value["password.passgeni-cert-id"] == result.cert_id
    tags = {t["Key"]: t["Value"] for t in eu.describe_secret(SecretId=arn)["Tags"]}
    assert tags["passgeni-cert-id"] == result.cert_id
    record = client.get_certificate(result.cert_id)
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    assert cert.claims.target is not None and cert.claims.target.path == f"{arn}#password"
    # Read back, and listed, by ARN; idempotent.
    back = store.read(parse_store_uri(f"aws-sm://{arn}"))
    assert back is not None and back.refs is not None and back.refs.cert_id == result.cert_id
    listed = list(store.list(parse_store_uri(f"aws-sm://{arn}", allow_prefix=True)))
    assert [r.uri.key for r in listed] == ["password"]
    assert provision_into_store(client, store, f"aws-sm://{arn}", "soc2").outcome == "unchanged"
    # Nothing was written in the store's own region.
    us = moto_server.boto3_client()
    assert not [s for s in us.list_secrets()["SecretList"] if uid in s["Name"]]


def test_an_arn_that_names_no_secret_is_refused_before_certification(
    moto_server: MotoServer, authority: Authority, uid: str
) -> None:
    client = authority.client()
    before = client.audit(page_size=1).total
    arn = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:absent/{uid}-AbCdEf"
    with pytest.raises(StoreError, match="must exist"):
        provision_into_store(client, open_store("aws-sm://"), f"aws-sm://{arn}", "soc2")
    assert client.audit(page_size=1).total == before
