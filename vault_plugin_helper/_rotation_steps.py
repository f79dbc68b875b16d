"""The four steps of a Secrets Manager rotation (see :mod:`vault_plugin_helper.rotation`).

Each step takes the ``secretsmanager`` client, the secret's ARN and the
version token, checks what is already done first (Secrets Manager may call any
step again), and logs ARNs, tokens and certificate ids only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from passgeni_core import (
    AuthorityClient,
    CertificateRefs,
    GenerationParameters,
    PassgeniError,
    StoreError,
    Target,
    provision,
)
from passgeni_core.stores import (
    StoreURI,
    clean_value_fields,
    merge_credential_fields,
    stored_credentials,
)
from passgeni_core.workflows import (
    REVOKE_REASON_NOT_APPLIED,
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

from ._aws_tags import validate_tag
from ._rotation_config import ALTERNATING_USERS, RotationConfig, RotationError
from ._rotation_proof import refs_of, stored, write_pending_proof
from ._rotation_users import CLONE_SUFFIX, master_credentials, other_user

__all__ = [
    "REVOKE_REASON_TEST_FAILED",
    "aws_error",
    "create_secret",
    "finish_secret",
    "judge",
    "set_secret",
    "test_secret",
]

log = logging.getLogger("passgeni.rotation")

REVOKE_REASON_TEST_FAILED = "rotation test failed"


# --- Secrets Manager ----------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def aws_error(exc: BaseException, what: str) -> StoreError:
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


def _target_for(
    config: RotationConfig,
    secret: Mapping[str, Any],
    admin_password: str | None,
    *,
    admin_user: str | None = None,
    template_role: str | None = None,
) -> CredentialTarget | None:
    if config.target in ("", "none"):
        return None
    if config.target == "postgresql":
        options: dict[str, Any] = {
            "role": secret.get("username"),
            "admin_password": admin_password,
            "admin_user": admin_user,
            "template_role": template_role,
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
    description = sm.describe_secret(SecretId=arn)
    name = description["Name"]
    result = provision(
        client,
        config.preset,
        parameters=params,
        target=Target(system="aws-sm", path=f"{name}#{config.password_key}", version=token),
        label=config.label,
    )
    refs = CertificateRefs(cert_id=result.cert_id, cert_url=result.cert_url)
    key = config.password_key
    if config.proof_location == "sibling":
        pending = clean_value_fields(current, key, result.credential)
    else:
        pending = merge_credential_fields(current, key, result.credential, refs)
    if config.strategy == ALTERNATING_USERS:
        pending["username"] = other_user(current.get("username"))
    try:
        if config.proof_location == "sibling":
            # The proof record first, keeping the current version's entry: nothing lost.
            now = stored(sm, name, key, current, None) if current.get(key) else None
            kms = description.get("KmsKeyId") or None  # the proof encrypted as the secret is
            write_pending_proof(sm, name, key, token, result.credential, refs, now, kms)
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


#: Revokes a certificate, returning None or why it could not (opens the authority lazily).
Revoker = Callable[[str, str], "str | None"]


def set_secret(sm: Any, arn: str, token: str, config: RotationConfig, revoke: Revoker) -> None:
    """Apply the pending password to the target; if that fails, revoke its certificate
    (``not applied to target``): a certificate never vouches for a password no system uses."""
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
    try:
        if config.strategy == ALTERNATING_USERS:
            _set_alternating(sm, arn, config, pending, new)
        else:
            _set_single_user(sm, arn, config, pending, new, probe)
    except (TargetError, RotationError) as exc:
        refs = refs_of(sm, _name(sm, arn), config.password_key, pending, token)
        raise type(exc)(
            f"setSecret: {exc.message}; " + _revoked(revoke, refs, REVOKE_REASON_NOT_APPLIED)
        ) from None


def _revoked(revoke: Revoker, refs: CertificateRefs | None, reason: str) -> str:
    if refs is None:
        return "no certificate to revoke"
    failure = revoke(refs.cert_id, reason)
    return f"certificate {refs.cert_id} " + (
        "was revoked" if failure is None else f"could NOT be revoked ({failure})"
    )


def _set_single_user(
    sm: Any,
    arn: str,
    config: RotationConfig,
    pending: Mapping[str, Any],
    new: str,
    probe: CredentialTarget,
) -> None:
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
        f"cannot log in to {probe.describe()} with the current or previous "
        f"password of {arn}" + (f": {last}" if last else "")
    )


def _set_alternating(
    sm: Any, arn: str, config: RotationConfig, pending: Mapping[str, Any], new: str
) -> None:
    current = _get_dict(sm, arn, "AWSCURRENT")
    if pending.get("username") != other_user(current.get("username")):
        raise RotationError(
            f"the pending version of {arn} does not name the other user of AWSCURRENT's "
            f"({current.get('username')!r}); alternating-users expects X and X{CLONE_SUFFIX}"
        )
    master_arn, admin_user, admin_password = master_credentials(sm, pending, config)
    target = _target_for(
        config,
        pending,
        admin_password,
        admin_user=admin_user,
        template_role=str(current["username"]),
    )
    assert target is not None
    target.set_password(new)
    log.info(
        "setSecret: %s pending password applied to %s (as the admin of %s)",
        arn,
        target.describe(),
        master_arn,
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
        refs = refs_of(sm, _name(sm, arn), config.password_key, pending, token)
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
    name = str(metadata.get("Name") or "")
    record = stored(sm, name, config.password_key, data, token)
    refs = record.refs
    verdict = None if refs is None else assess(client, "aws-sm", record)
    # Checked before anything moves: a tag AWS would refuse stops the promotion.
    tags = None if verdict is None or refs is None else _verified_tags(arn, verdict, refs)
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
                previous_refs = refs_of(sm, name, config.password_key, old, current_version)
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
                previous_refs = refs_of(sm, name, config.password_key, old, previous_version)
            except Exception:
                previous_refs = None
    if tags is not None:
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


def _verified_tags(
    arn: str, verdict: Verdict, refs: CertificateRefs
) -> list[dict[str, str]] | None:
    """The tags of a verified certificate (what its claims say, never the unverified JSON),
    checked by the store's own tag rule; None when nothing was verified."""
    claims = verdict.claims
    if claims is None:
        return None
    full = CertificateRefs(
        cert_id=claims.jti,
        cert_url=verdict.record.cert_url if verdict.record is not None else refs.cert_url,
        standard=claims.compliance_standard,
        expires_at=claims.expires_at,
    )
    tags = []
    for key, value in full.to_metadata().items():
        validate_tag(key, value, where=f"finishSecret: {arn}")
        tags.append({"Key": key, "Value": value})
    return tags


def judge(
    client: AuthorityClient,
    metadata: Mapping[str, Any],
    token: str,
    config: RotationConfig,
    data: Mapping[str, Any],
    sm: Any = None,
) -> Verdict:
    """The one judge's verdict on the version ``token`` holding ``data`` (certified as
    ``aws-sm``, ``NAME#KEY``, version = the token, by :func:`create_secret`); its proof
    from inside the value, or (given the client ``sm``) from the proof record."""
    name = str(metadata.get("Name") or "")
    record = stored(sm, name, config.password_key, data, token) if sm is not None else None
    if record is None:
        uri = StoreURI("aws-sm", name, config.password_key, True)
        (record,) = stored_credentials(
            uri, data, version=token, metadata_refs=None, only_key=config.password_key
        )
    return assess(client, "aws-sm", record)


def _name(sm: Any, arn: str) -> str:
    return str(sm.describe_secret(SecretId=arn).get("Name") or arn)


def _revoke(client: AuthorityClient, cert_id: str, reason: str) -> str | None:
    try:
        client.revoke(cert_id, reason)
    except PassgeniError as exc:
        return exc.message
    except Exception as exc:
        return type(exc).__name__
    return None
