"""AWS Secrets Manager rotation handler: a certified password, applied to a target.

Deploy as a Lambda function with handler ``vault_plugin_helper.rotation.handler``
and attach it to a secret (``aws secretsmanager rotate-secret --rotation-lambda-arn``).
It implements the four-step protocol of AWS's rotation templates, with the
same staging labels and the same idempotency: Secrets Manager may call any
step again, and each step checks what is already done first.

``createSecret``
    If the ``AWSPENDING`` version of this token already has a value, nothing
    happens. Otherwise: generate to ``PASSGENI_PRESET`` locally (excluding the
    target's forbidden characters), certify with the authority (target
    ``aws-sm``, ``NAME#KEY``, version = the token), write the proof record
    ``passgeni-proof/NAME`` (the seed and certificate references of this
    version, keeping the current version's: see :mod:`._rotation_proof`), then
    ``put_secret_value`` the current SecretString with the new password (``KEY``
    only, an earlier inline ``KEY.passgeni-*`` field dropped; with
    ``PASSGENI_PROOF_LOCATION=inline``: with ``KEY.passgeni-seed``,
    ``KEY.passgeni-cert-id``, ``KEY.passgeni-cert-url``) under ``AWSPENDING``.
    If either write fails, the new certificate is revoked (``not stored``).
``setSecret``
    If the pending password already logs in, nothing happens. Otherwise apply
    it to the target (PostgreSQL: ``ALTER ROLE``). ``single-user`` (default):
    authenticating with ``AWSCURRENT``'s password, else ``AWSPREVIOUS``'s (the
    role changes its own password). ``alternating-users``: the pending version
    names the *other* role (``X`` <-> ``X_clone``, chosen by createSecret),
    whose password the admin of the master secret sets, creating the clone on
    the first rotation (see :mod:`._rotation_users`). If the password cannot be
    applied, the pending certificate is revoked (``not applied to target``)
    and the step raises.
``testSecret``
    Log in with the pending password. On failure: the pending version's
    certificate is revoked (``test failed``), the current password is made
    to work on the target again if it no longer does, and the step raises
    (Secrets Manager then stops the rotation: ``AWSCURRENT`` is unchanged).
``finishSecret``
    Refuse to promote a version whose certificate is not valid, as the one
    judge (:func:`passgeni_core.workflows.assess`) finds it: signature
    verified, bound to the pending password, for this secret and version,
    not revoked or expired (never the authority's unverified status); move
    ``AWSCURRENT`` to the token's version (``AWSPREVIOUS`` follows), tag the
    secret with ``passgeni-cert-url``, ``passgeni-cert-id``,
    ``passgeni-standard``, ``passgeni-expires-at`` (tags belong to the secret,
    not the version, hence the references inside the SecretString too), then
    revoke the previous version's certificate (``rotated``).

Configuration (environment variables, as Lambda users expect)
==============================================================

``PASSGENI_PRESET``           required: the compliance preset (``soc2``, ``pci-dss``...)
``PASSGENI_LENGTH``           optional password length (default: the preset's)
``PASSGENI_EXCLUDE``          optional extra characters never to generate
``PASSGENI_PASSWORD_KEY``     the SecretString field holding the password (``password``)
``PASSGENI_TARGET``           ``postgresql`` (default) or ``none``; other kinds come from
                              the ``passgeni.targets`` entry-point group
``PASSGENI_LABEL``            optional certificate label
``PASSGENI_URL``              the authority (required: without it createSecret, testSecret
                              and finishSecret fail with ``authority_not_configured``
                              before any write; ``embedded`` runs a throwaway one in-process,
                              for local tests only)
``PASSGENI_ISSUER``           the certificates' issuer when it is not ``PASSGENI_URL``
``PASSGENI_API_KEY``          its API key, or ``PASSGENI_API_KEY_SECRET_ARN``: a secret
                              holding it (plain string, or JSON with an ``api_key`` field)
``PASSGENI_TIMEOUT``          authority timeout in seconds
``PASSGENI_ROTATION_STRATEGY`` ``single-user`` (default) or ``alternating-users``
``PASSGENI_MASTER_SECRET_ARN`` alternating-users: the admin's secret (``username``,
                              ``password``) when the secret has no ``masterarn`` field
``AWS_REGION``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``/``AWS_ENDPOINT_URL``: the SDK's own.

The SecretString is the RDS form AWS's templates use: a JSON object with
``engine``, ``host``, ``port``, ``username``, ``dbname`` and the password field.

Logging: step, secret ARN, token and certificate ids only; never a password,
binding key or API key.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from passgeni_core import AuthorityClient, PassgeniError, connect, resolve_config

from ._botocore_redaction import install_redaction
from ._rotation_config import RotationConfig, RotationError
from ._rotation_steps import (
    REVOKE_REASON_TEST_FAILED,
    aws_error,
    create_secret,
    finish_secret,
    set_secret,
    test_secret,
)

__all__ = [
    "REVOKE_REASON_TEST_FAILED",
    "RotationConfig",
    "RotationError",
    "handler",
    "run_step",
]

log = logging.getLogger("passgeni.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


# --- entry points -------------------------------------------------------------------------------


@contextmanager
def _authority(config: RotationConfig, sm: Any) -> Iterator[AuthorityClient]:
    api_key = config.api_key
    if api_key is None and config.api_key_secret_arn:
        try:
            raw = sm.get_secret_value(
                SecretId=config.api_key_secret_arn, VersionStage="AWSCURRENT"
            )["SecretString"]
        except Exception as exc:
            raise aws_error(exc, "reading PASSGENI_API_KEY_SECRET_ARN") from None
        try:
            parsed = json.loads(raw)
            api_key = parsed.get("api_key") if isinstance(parsed, dict) else raw
        except ValueError:
            api_key = raw
    resolved = resolve_config(
        url=config.url,
        api_key=api_key,
        timeout=config.timeout,
        issuer=config.issuer,
        url_option=None,
        embedded_option="PASSGENI_URL=embedded",
    )
    with connect(resolved) as client:
        yield client


def _revoke(config: RotationConfig, sm: Any, cert_id: str, reason: str) -> str | None:
    """Revoke ``cert_id``; None, or why it could not be revoked (no secret in it)."""
    try:
        with _authority(config, sm) as client:
            client.revoke(cert_id, reason)
    except PassgeniError as exc:
        return exc.message
    except Exception as exc:
        return type(exc).__name__
    return None


def _secrets_manager() -> Any:
    import boto3

    # Lambda sets AWS_REGION (and AWS_DEFAULT_REGION); older SDKs read only the latter.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return boto3.client("secretsmanager", region_name=region)


def run_step(
    event: Mapping[str, Any],
    *,
    sm: Any | None = None,
    config: RotationConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """One rotation step (what :func:`handler` does); ``sm``/``config`` injectable.

    Raises:
        RotationError: rotation disabled, unknown step, or a token not staged for rotation.
        TargetError / StoreError / AuthorityError: the step failed (message says what state
            everything is left in).
    """
    arn, token, step = event.get("SecretId"), event.get("ClientRequestToken"), event.get("Step")
    if not isinstance(arn, str) or not isinstance(token, str) or step not in STEPS:
        raise RotationError(
            "the event needs SecretId, ClientRequestToken and Step "
            "(createSecret, setSecret, testSecret or finishSecret)"
        )
    # botocore logs request bodies (SecretString: passwords, binding keys) at DEBUG;
    # the aws-sm backend's redaction filter must be on here too, not only when
    # the store backend happens to be imported.
    install_redaction()
    cfg = config or RotationConfig.from_environ(environ)
    client_sm = sm if sm is not None else _secrets_manager()
    try:
        metadata = client_sm.describe_secret(SecretId=arn)
    except Exception as exc:
        raise aws_error(exc, "DescribeSecret") from None
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"secret {arn} is not enabled for rotation")
    versions = metadata.get("VersionIdsToStages", {})
    if token not in versions:
        raise RotationError(f"secret version {token} has no stage for rotation of {arn}")
    if "AWSCURRENT" in versions[token] and step != "finishSecret":
        log.info("%s: version %s is already AWSCURRENT for %s", step, token, arn)
        return
    if "AWSCURRENT" not in versions[token] and "AWSPENDING" not in versions[token]:
        raise RotationError(f"secret version {token} is not set as AWSPENDING for {arn}")
    if step == "setSecret":
        # The authority is needed only if the password cannot be applied (to revoke).
        set_secret(
            client_sm,
            arn,
            token,
            cfg,
            lambda cert_id, reason: _revoke(cfg, client_sm, cert_id, reason),
        )
        return
    with _authority(cfg, client_sm) as client:
        if step == "createSecret":
            create_secret(client_sm, arn, token, cfg, client)
        elif step == "testSecret":
            test_secret(client_sm, arn, token, cfg, client)
        else:
            finish_secret(client_sm, arn, token, cfg, client)


def handler(event: Mapping[str, Any], context: Any = None) -> None:
    """The Lambda entry point: ``vault_plugin_helper.rotation.handler``."""
    try:
        run_step(event)
    except PassgeniError as exc:
        log.error("%s failed [%s]: %s", event.get("Step"), exc.code, exc.message)
        raise
