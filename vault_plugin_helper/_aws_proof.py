"""AWS Secrets Manager proof records: ``passgeni-proof/NAME`` beside the secret ``NAME``.

The sibling secret holds the credential's proof record (see ``passgeni_core.stores``'
proof records): a JSON object, a ``KEY.passgeni-proof`` field per key. It is created
with the same KMS key choice as the secrets the store creates and tagged
``passgeni-proof-of: NAME``; an IAM policy on ``secret:passgeni-proof/*`` protects
every proof apart from the values workloads read. New versions are written as the
store writes values: ``AWSPENDING`` first, then ``AWSCURRENT`` moved from the version
read (check-and-set), so two writers never lose each other's entry.

A secret addressed by ARN (possibly another account's, which this account cannot
create secrets in) keeps the inline layout.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from passgeni_core import StoreConflict, StoreError

from ._aws_arn import parse_secret_arn

PROOF_PREFIX = "passgeni-proof/"
PROOF_TAG = "passgeni-proof-of"

Call = Callable[..., Any]


def proof_name(name: str) -> str | None:
    """The proof record of the secret ``name``; None when addressed by ARN (inline)."""
    return None if parse_secret_arn(name) is not None else PROOF_PREFIX + name


def read_proof(call: Call, name: str) -> tuple[str | None, dict[str, Any] | None]:
    """``(version id, record)`` of the proof record's ``AWSCURRENT``; ``(None, None)`` absent."""
    result = call(
        "get_secret_value",
        f"read the proof record {name}",
        missing_ok=True,
        SecretId=name,
        VersionStage="AWSCURRENT",
    )
    if not isinstance(result, dict):
        return None, None
    try:
        value = json.loads(str(result.get("SecretString") or "{}"))
    except ValueError:
        value = {}
    version = result.get("VersionId")
    return (str(version) if version else None), (value if isinstance(value, dict) else {})


def put_current(call: Call, name: str, token: str, body: str, previous: str) -> None:
    """A new version of ``name`` made current only if ``previous`` still is (check-and-set)."""
    call(
        "put_secret_value",
        f"write {name}",
        SecretId=name,
        ClientRequestToken=token,
        SecretString=body,
        VersionStages=["AWSPENDING"],
    )
    try:
        call(
            "update_secret_version_stage",
            f"make the new version of {name} current",
            SecretId=name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=previous,
        )
    except StoreError as exc:
        if type(exc) is StoreError and "AWSCURRENT" in exc.message:
            raise StoreConflict(
                f"aws-sm://{name}: another writer made a new version current meanwhile; "
                "the new value stays pending, the current one is unchanged"
            ) from None
        raise
    # Best effort: the pending label has served its purpose.
    with contextlib.suppress(StoreError):
        call(
            "update_secret_version_stage",
            f"clear AWSPENDING of {name}",
            SecretId=name,
            VersionStage="AWSPENDING",
            RemoveFromVersionId=token,
        )


def write_proof_record(
    call: Call,
    *,
    secret: str,
    token: str,
    record: dict[str, str],
    previous: str | None,
    kms_key_id: str | None,
) -> None:
    """Create the proof record of ``secret`` (absent: ``previous`` None) or add a version."""
    name = PROOF_PREFIX + secret
    body = json.dumps(record, separators=(",", ":"))
    if previous is None:
        kms: dict[str, Any] = {"KmsKeyId": kms_key_id} if kms_key_id else {}
        call(
            "create_secret",
            f"create the proof record {name}",
            Name=name,
            ClientRequestToken=token,
            SecretString=body,
            Description="PassGeni proof record (generation seed, certificate references)",
            Tags=[{"Key": PROOF_TAG, "Value": secret}],
            **kms,
        )
        return
    put_current(call, name, token, body, previous)
