"""The rotation Lambda promotes a version only on the one judge's verdict (no server).

``finishSecret`` used to trust the authority's JSON ``status``; it now asks
``passgeni_core.workflows.assess``, so a record that says "valid" about a
certificate whose signature, binding or version does not check out promotes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from passgeni_core import AuthorityNotConfigured
from passgeni_core.crypto import Credential
from passgeni_core.model import Target
from passgeni_core.stores import CertificateRefs, credential_fields
from passgeni_core.testing import FakeAuthority
from vault_plugin_helper._rotation_steps import judge
from vault_plugin_helper.rotation import RotationConfig, run_step

NAME = "app/db"
TOKEN = "5c8a0c47-0000-4000-8000-000000000001"
CONFIG = RotationConfig(preset="soc2", target="none")


def pending(authority: FakeAuthority, *, version: str = TOKEN, **issue: Any) -> dict[str, str]:
    """The AWSPENDING SecretString createSecret writes: RDS fields and the credential fields."""
    credential = Credential.create("a fresh pending password")
    issued = authority.issue(
        credential,
        target=Target(system="aws-sm", path=f"{NAME}#password", version=version),
        **issue,
    )
    refs = CertificateRefs(cert_id=issued.cert_id, cert_url=authority.cert_url(issued.cert_id))
    return {
        "engine": "postgres",
        "username": "app",
        **credential_fields("password", credential, refs),
    }


def verdict_of(authority: FakeAuthority, data: dict[str, str]) -> Any:
    with authority.client() as client:
        return judge(client, {"Name": NAME}, TOKEN, CONFIG, data)


def test_a_verified_bound_certificate_for_this_version_promotes() -> None:
    authority = FakeAuthority()
    verdict = verdict_of(authority, pending(authority))
    assert verdict.ok and verdict.status == "valid"
    assert verdict.claims is not None and verdict.claims.target.version == TOKEN


def test_a_tampered_token_does_not_promote_though_the_record_says_valid() -> None:
    authority = FakeAuthority()
    data = pending(authority)
    issued = authority.certificates[data["password.passgeni-cert-id"]]
    head, body, sig = issued.token.split(".")
    issued.record_overrides["token"] = f"{head}.{body}.{sig[::-1]}"
    record = authority.record(issued.cert_id)
    assert record is not None and record["status"] == "valid"  # what used to decide
    verdict = verdict_of(authority, data)
    assert not verdict.ok and verdict.status == "invalid"


def test_a_certificate_for_another_version_does_not_promote() -> None:
    authority = FakeAuthority()
    verdict = verdict_of(authority, pending(authority, version="another-token"))
    assert not verdict.ok and verdict.reasons == ("version_mismatch",)


def test_a_password_that_is_not_the_certified_one_does_not_promote() -> None:
    authority = FakeAuthority()
    data = {**pending(authority), "password": "swapped after certification"}
    verdict = verdict_of(authority, data)
    assert not verdict.ok and verdict.reasons == ("binding_mismatch",)


def test_a_revoked_certificate_does_not_promote() -> None:
    authority = FakeAuthority()
    data = pending(authority)
    authority.revoke(data["password.passgeni-cert-id"], "rotation test failed")
    verdict = verdict_of(authority, data)
    assert not verdict.ok and verdict.status == "revoked"


def test_another_issuer_does_not_promote() -> None:
    authority = FakeAuthority()
    verdict = verdict_of(authority, pending(authority, issuer="https://elsewhere.test"))
    assert verdict.status == "invalid" and verdict.reasons == ("wrong_issuer",)


class _RecordingSecretsManager:
    """Secrets Manager as far as a rotation step reads it; every write is recorded."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        return {
            "Name": NAME,
            "RotationEnabled": True,
            "VersionIdsToStages": {TOKEN: ["AWSPENDING"], "old": ["AWSCURRENT"]},
        }

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        return {"SecretString": '{"engine": "postgres", "username": "app", "password": "old"}'}

    def __getattr__(self, name: str) -> Any:
        def write(**kwargs: Any) -> None:
            self.writes.append(name)

        return write


@pytest.mark.parametrize("step", ["createSecret", "testSecret", "finishSecret"])
def test_no_authority_configured_fails_closed_before_any_write(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in ("PASSGENI_URL", "PASSGENI_API_KEY", "PASSGENI_ISSUER", "PASSGENI_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PASSGENI_CONFIG", os.devnull)
    sm = _RecordingSecretsManager()
    event = {"SecretId": "arn:aws:secretsmanager:x", "ClientRequestToken": TOKEN, "Step": step}
    with pytest.raises(AuthorityNotConfigured, match="PASSGENI_URL=embedded"):
        run_step(event, sm=sm, config=CONFIG)
    assert sm.writes == []


class _StagedSecretsManager:
    """A secret with AWSCURRENT ``old`` and AWSPENDING ``TOKEN`` holding ``pending``."""

    def __init__(self, pending: dict[str, str]) -> None:
        self.pending = pending
        self.writes: list[str] = []

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        return {
            "Name": NAME,
            "RotationEnabled": True,
            "VersionIdsToStages": {TOKEN: ["AWSPENDING"], "old": ["AWSCURRENT"]},
        }

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("VersionStage") == "AWSPENDING":
            return {"SecretString": json.dumps(self.pending)}
        return {"SecretString": '{"engine": "postgres", "username": "app", "password": "old"}'}

    def __getattr__(self, name: str) -> Any:
        def write(**kwargs: Any) -> None:
            self.writes.append(name)

        return write


def test_a_tag_aws_would_refuse_stops_the_promotion_before_anything_moves() -> None:
    from passgeni_core import StoreLimitExceeded
    from vault_plugin_helper._rotation_steps import finish_secret

    authority = FakeAuthority()
    data = pending(authority)
    cert = authority.certificates[data["password.passgeni-cert-id"]]
    cert.record_overrides["cert_url"] = "https://pass.example/cert/x?tab=\t"
    sm = _StagedSecretsManager(data)
    with authority.client() as client, pytest.raises(StoreLimitExceeded, match="tag"):
        finish_secret(sm, "arn:aws:secretsmanager:x", TOKEN, CONFIG, client)
    assert sm.writes == []  # AWSCURRENT not moved, nothing tagged
