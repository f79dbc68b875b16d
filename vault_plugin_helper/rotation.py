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
    ``aws-sm``, ``NAME#KEY``, version = the token), and ``put_secret_value``
    the current SecretString with the new password, its binding key and the
    certificate id and URL (``KEY``, ``KEY.passgeni-binding-key``,
    ``KEY.passgeni-cert-id``, ``KEY.passgeni-cert-url``, as every PassGeni
    store writes them) under ``AWSPENDING``. If that write fails, the new
    certificate is revoked (``not stored``).
``setSecret``
    If the pending password already logs in, nothing happens. Otherwise apply
    it to the target (PostgreSQL: ``ALTER ROLE``), authenticating with
    ``AWSCURRENT``'s password, else ``AWSPREVIOUS``'s (the "single user"
    strategy of AWS's templates: the role changes its own password).
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
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from passgeni_core import (
    AuthorityClient,
    CertificateRefs,
    GenerationParameters,
    PassgeniError,
    StoreError,
    StoreLimitExceeded,
    Target,
    connect,
    provision,
    resolve_config,
)
from passgeni_core.stores import (
    StoredCredential,
    StoreURI,
    credential_fields,
    parse_credential_fields,
)
from passgeni_core.workflows import (
    REVOKE_REASON_NOT_STORED,
    REVOKE_REASON_ROTATED,
    CredentialTarget,
    TargetError,
    TargetLoginFailed,
    Verdict,
    assess,
    open_target,
    with_exclusions,
)

__all__ = [
    "REVOKE_REASON_TEST_FAILED",
    "RotationConfig",
    "RotationError",
    "handler",
    "run_step",
]

log = logging.getLogger("passgeni.rotation")

REVOKE_REASON_TEST_FAILED = "rotation test failed"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
_TAG_VALUE = re.compile(r"[\w\s+\-=.:/@]{0,256}", re.ASCII)


class RotationError(PassgeniError):
    """A rotation step cannot proceed (rotation disabled, wrong stage, bad secret)."""

    code = "rotation_error"
    http_status = 400


@dataclass(frozen=True, kw_only=True, repr=False)
class RotationConfig:
    """The handler's configuration, read once from the environment. ``repr`` hides the key."""

    preset: str
    length: int | None = None
    exclude: str = ""
    password_key: str = "password"  # noqa: S105 - a field name
    target: str = "postgresql"
    label: str | None = None
    url: str | None = None
    issuer: str | None = None
    api_key: str | None = None
    api_key_secret_arn: str | None = None
    timeout: float | None = None

    def __repr__(self) -> str:
        return (
            f"RotationConfig(preset={self.preset!r}, target={self.target!r}, "
            f"password_key={self.password_key!r}, url={self.url!r})"
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RotationConfig:
        """Raises RotationError: ``PASSGENI_PRESET`` missing or a malformed value."""
        env = os.environ if environ is None else environ
        preset = env.get("PASSGENI_PRESET", "").strip()
        if not preset:
            raise RotationError("PASSGENI_PRESET is not set (e.g. soc2, pci-dss)")
        length: int | None = None
        if env.get("PASSGENI_LENGTH"):
            try:
                length = int(env["PASSGENI_LENGTH"])
            except ValueError:
                raise RotationError("PASSGENI_LENGTH must be an integer") from None
        timeout: float | None = None
        if env.get("PASSGENI_TIMEOUT"):
            try:
                timeout = float(env["PASSGENI_TIMEOUT"])
            except ValueError:
                raise RotationError("PASSGENI_TIMEOUT must be a number of seconds") from None
        key = env.get("PASSGENI_PASSWORD_KEY") or "password"
        if ".passgeni-" in key:
            raise RotationError("PASSGENI_PASSWORD_KEY may not contain '.passgeni-'")
        return cls(
            preset=preset,
            length=length,
            exclude=env.get("PASSGENI_EXCLUDE", ""),
            password_key=key,
            target=(env.get("PASSGENI_TARGET") or "postgresql").strip().lower(),
            label=env.get("PASSGENI_LABEL") or None,
            url=env.get("PASSGENI_URL") or None,
            issuer=env.get("PASSGENI_ISSUER") or None,
            api_key=env.get("PASSGENI_API_KEY") or None,
            api_key_secret_arn=env.get("PASSGENI_API_KEY_SECRET_ARN") or None,
            timeout=timeout,
        )


# --- helpers ------------------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _aws_error(exc: BaseException, what: str) -> StoreError:
    code = _error_code(exc) or type(exc).__name__
    return StoreError(f"AWS Secrets Manager {what} failed: {code}")


def _get_dict(sm: Any, arn: str, stage: str, token: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"SecretId": arn, "VersionStage": stage}
    if token is not None:
        kwargs["VersionId"] = token
    response = sm.get_secret_value(**kwargs)
    raw = response.get("SecretString")
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise RotationError(
            f"the {stage} version of {arn} is not a JSON object SecretString (RDS form expected)"
        )
    return data


def _pending_or_none(sm: Any, arn: str, token: str) -> dict[str, Any] | None:
    try:
        return _get_dict(sm, arn, "AWSPENDING", token)
    except Exception as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _check_tag_value(name: str, value: str) -> str:
    if not _TAG_VALUE.fullmatch(value):
        raise StoreLimitExceeded(
            f"tag {name} would hold a value AWS refuses (at most 256 letters, digits, spaces "
            "and + - = . _ : / @)"
        )
    return value


@contextmanager
def _authority(config: RotationConfig, sm: Any) -> Iterator[AuthorityClient]:
    api_key = config.api_key
    if api_key is None and config.api_key_secret_arn:
        try:
            raw = sm.get_secret_value(
                SecretId=config.api_key_secret_arn, VersionStage="AWSCURRENT"
            )["SecretString"]
        except Exception as exc:
            raise _aws_error(exc, "reading PASSGENI_API_KEY_SECRET_ARN") from None
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


def _target_for(
    config: RotationConfig, secret: Mapping[str, Any], admin_password: str | None
) -> CredentialTarget | None:
    if config.target in ("", "none"):
        return None
    if config.target == "postgresql":
        options: dict[str, Any] = {
            "role": secret.get("username"),
            "admin_password": admin_password,
        }
        for key in ("host", "port", "dbname"):
            if secret.get(key) not in (None, ""):
                options[key] = str(secret[key])
        return open_target("postgresql", options)
    options = {
        k: v
        for k, v in secret.items()
        if isinstance(k, str) and ".passgeni-" not in k and k != config.password_key
    }
    options["admin_password"] = admin_password
    return open_target(config.target, options)


def _parameters(config: RotationConfig, target: CredentialTarget | None) -> GenerationParameters:
    params = GenerationParameters.for_preset(config.preset, length=config.length)
    extra = config.exclude + (target.excluded_characters if target is not None else "")
    return with_exclusions(params, extra)


# --- the steps ----------------------------------------------------------------------------------


def create_secret(
    sm: Any, arn: str, token: str, config: RotationConfig, client: AuthorityClient
) -> None:
    current = _get_dict(sm, arn, "AWSCURRENT")
    if _pending_or_none(sm, arn, token) is not None:
        log.info("createSecret: %s version %s already has a value", arn, token)
        return
    # The target is only needed for its excluded characters here.
    target = _target_for(config, current, None) if config.target == "postgresql" else None
    params = _parameters(config, target)
    name = sm.describe_secret(SecretId=arn)["Name"]
    result = provision(
        client,
        config.preset,
        parameters=params,
        target=Target(system="aws-sm", path=f"{name}#{config.password_key}", version=token),
        label=config.label,
    )
    refs = CertificateRefs(cert_id=result.cert_id, cert_url=result.cert_url)
    pending = {**current, **credential_fields(config.password_key, result.credential, refs)}
    try:
        sm.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=json.dumps(pending),
            VersionStages=["AWSPENDING"],
        )
    except Exception as exc:
        failure = _revoke(client, result.cert_id, REVOKE_REASON_NOT_STORED)
        raise StoreError(
            f"createSecret: the pending version of {arn} was not stored "
            f"({_error_code(exc) or type(exc).__name__}); certificate {result.cert_id} "
            + ("was revoked" if failure is None else f"could NOT be revoked ({failure})")
        ) from None
    log.info("createSecret: %s version %s certified as %s", arn, token, result.cert_id)


def _password(secret: Mapping[str, Any], key: str) -> str | None:
    value = secret.get(key)
    return value if isinstance(value, str) and value else None


def set_secret(sm: Any, arn: str, token: str, config: RotationConfig) -> None:
    pending = _get_dict(sm, arn, "AWSPENDING", token)
    new = _password(pending, config.password_key)
    if new is None:
        raise RotationError(f"setSecret: the pending version of {arn} holds no password")
    probe = _target_for(config, pending, None)
    if probe is None:
        return
    try:
        probe.test_password(new)
        log.info("setSecret: %s pending password already works on %s", arn, probe.describe())
        return
    except TargetLoginFailed:
        pass
    last: Exception | None = None
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        try:
            admin = _password(_get_dict(sm, arn, stage), config.password_key)
        except Exception:  # noqa: S112 - no such version (first rotation): try the next
            continue
        if admin is None:
            continue
        target = _target_for(config, pending, admin)
        assert target is not None
        try:
            target.set_password(new)
        except TargetLoginFailed as exc:
            last = exc
            continue
        log.info("setSecret: %s pending password applied to %s", arn, target.describe())
        return
    raise TargetLoginFailed(
        f"setSecret: cannot log in to {probe.describe()} with the current or previous "
        f"password of {arn}" + (f": {last}" if last else "")
    )


def test_secret(
    sm: Any, arn: str, token: str, config: RotationConfig, client: AuthorityClient
) -> None:
    pending = _get_dict(sm, arn, "AWSPENDING", token)
    new = _password(pending, config.password_key)
    target = _target_for(config, pending, None)
    if target is None or new is None:
        if new is None:
            raise RotationError(f"testSecret: the pending version of {arn} holds no password")
        return
    try:
        target.test_password(new)
    except TargetError as exc:
        _, _, refs = parse_credential_fields(config.password_key, pending)
        revoked = (
            "no certificate to revoke"
            if refs is None
            else f"certificate {refs.cert_id} "
            + (
                "was revoked"
                if (failure := _revoke(client, refs.cert_id, REVOKE_REASON_TEST_FAILED)) is None
                else f"could NOT be revoked ({failure})"
            )
        )
        kept = _keep_current_working(sm, arn, config, pending, new)
        raise TargetLoginFailed(
            f"testSecret: the pending password of {arn} does not log in to "
            f"{target.describe()} ({exc.message}); {revoked}; {kept}; AWSCURRENT is unchanged"
        ) from None
    log.info("testSecret: %s pending password logs in to %s", arn, target.describe())


def _keep_current_working(
    sm: Any, arn: str, config: RotationConfig, pending: Mapping[str, Any], new: str
) -> str:
    current = _get_dict(sm, arn, "AWSCURRENT")
    old = _password(current, config.password_key)
    if old is None:
        return "the current version holds no password"
    check = _target_for(config, current, None)
    assert check is not None
    try:
        check.test_password(old)
        return "the current password still logs in"
    except TargetError:
        pass
    for admin in (new, old):
        target = _target_for(config, current, admin)
        assert target is not None
        try:
            target.set_password(old)
            check.test_password(old)
        except TargetError:
            continue
        return "the current password was restored on the target"
    return "the current password could NOT be restored on the target: fix it by hand"


def finish_secret(
    sm: Any, arn: str, token: str, config: RotationConfig, client: AuthorityClient
) -> None:
    metadata = sm.describe_secret(SecretId=arn)
    versions: dict[str, list[str]] = metadata.get("VersionIdsToStages", {})
    current_version = next((v for v, s in versions.items() if "AWSCURRENT" in s), None)
    pending = _get_dict(sm, arn, "AWSPENDING", token) if current_version != token else None
    data = pending if pending is not None else _get_dict(sm, arn, "AWSCURRENT")
    _, _, refs = parse_credential_fields(config.password_key, data)
    verdict = None if refs is None else _judge(client, metadata, token, config, data)
    previous_refs = None
    if current_version != token:
        if refs is None or verdict is None:
            raise RotationError(
                f"finishSecret: the pending version of {arn} carries no certificate references"
            )
        verdict.raise_for_error()  # an authority that cannot be asked promotes nothing
        if not verdict.ok:
            raise RotationError(
                f"finishSecret: certificate {refs.cert_id} of the pending version is "
                f"{verdict.status} ({verdict.detail}); AWSCURRENT was not moved"
            )
        if current_version is not None:
            try:
                old = _get_dict(sm, arn, "AWSCURRENT")
                _, _, previous_refs = parse_credential_fields(config.password_key, old)
            except RotationError:
                previous_refs = None
        kwargs: dict[str, Any] = {
            "SecretId": arn,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": token,
        }
        if current_version is not None:
            kwargs["RemoveFromVersionId"] = current_version
        sm.update_secret_version_stage(**kwargs)
        log.info("finishSecret: %s AWSCURRENT moved to %s", arn, token)
    if "AWSPENDING" in versions.get(token, []):
        # Done: a pending label left beside AWSCURRENT makes the next RotateSecret
        # look like "a previous rotation is still in progress" to some implementations.
        sm.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
        )
    if current_version == token:
        # A re-run after the move: finish what may have been cut short (revocation is idempotent).
        previous_version = next((v for v, s in versions.items() if "AWSPREVIOUS" in s), None)
        if previous_version is not None:
            try:
                old = _get_dict(sm, arn, "AWSPREVIOUS", previous_version)
                _, _, previous_refs = parse_credential_fields(config.password_key, old)
            except Exception:
                previous_refs = None
    claims = None if verdict is None else verdict.claims
    if refs is not None and verdict is not None and claims is not None:
        # The tags say what the verified certificate says, never the unverified JSON.
        full = CertificateRefs(
            cert_id=claims.jti,
            cert_url=verdict.record.cert_url if verdict.record is not None else refs.cert_url,
            standard=claims.compliance_standard,
            expires_at=claims.expires_at,
        )
        tags = [{"Key": k, "Value": _check_tag_value(k, v)} for k, v in full.to_metadata().items()]
        sm.tag_resource(SecretId=arn, Tags=tags)
    elif refs is not None and verdict is not None:
        log.warning(
            "finishSecret: %s not tagged: certificate %s is %s", arn, refs.cert_id, verdict.status
        )
    if previous_refs is not None and refs is not None and previous_refs.cert_id != refs.cert_id:
        failure = _revoke(client, previous_refs.cert_id, REVOKE_REASON_ROTATED)
        if failure is not None:
            log.warning(
                "finishSecret: previous certificate %s not revoked: %s",
                previous_refs.cert_id,
                failure,
            )


def _judge(
    client: AuthorityClient,
    metadata: Mapping[str, Any],
    token: str,
    config: RotationConfig,
    data: Mapping[str, Any],
) -> Verdict:
    """The one judge's verdict on the version ``token`` holding ``data`` (certified as
    ``aws-sm``, ``NAME#KEY``, version = the token, by :func:`create_secret`)."""
    password, binding_key, refs = parse_credential_fields(config.password_key, data)
    uri = StoreURI("aws-sm", str(metadata.get("Name") or ""), config.password_key, True)
    stored = StoredCredential(
        uri=uri, version=token, password=password, binding_key=binding_key, refs=refs
    )
    return assess(client, "aws-sm", stored)


def _revoke(client: AuthorityClient, cert_id: str, reason: str) -> str | None:
    try:
        client.revoke(cert_id, reason)
    except PassgeniError as exc:
        return exc.message
    except Exception as exc:
        return type(exc).__name__
    return None


# --- entry points -------------------------------------------------------------------------------


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
    from .aws import _install_redaction

    _install_redaction()
    cfg = config or RotationConfig.from_environ(environ)
    client_sm = sm if sm is not None else _secrets_manager()
    try:
        metadata = client_sm.describe_secret(SecretId=arn)
    except Exception as exc:
        raise _aws_error(exc, "DescribeSecret") from None
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
        set_secret(client_sm, arn, token, cfg)
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
