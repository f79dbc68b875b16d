"""Rotation: epochs ("keepers"), credential targets, and the idempotent ensure/rotate flow.

A *keeper* is a rotation epoch chosen by the user (Terraform's ``keeper``, a
bulk rotation's ``epoch``: a date, a ticket number, ``"2026-q4"``). It is
recorded in the certificate itself, as the end of its ``label``
(``keeper=K``, or ``LABEL | keeper=K``), so the epoch is signed evidence and
no store needs a field of its own for it. :func:`ensure_rotated` asks the
one judge (:func:`~passgeni_core.workflows.assess`, with the preset and
keeper) about the stored credential and

* leaves the credential alone when its certificate is valid, of the same
  preset, bound to the stored value, for the stored version, and of the same
  keeper (so re-running a Terraform plan or a bulk rotation changes nothing),
  completing its metadata when only that lags behind (``repaired``);
* otherwise generates, certifies and stores a new credential (``rotated``),
  or creates it when absent (``created``).

A *target* is a system that uses the credential (a PostgreSQL role): a
rotation with a target applies the new password there, logs in with it, and
only then stores it, so a failure at any step leaves the previous credential
current in both places (see :func:`ensure_rotated`). Targets are found by
kind through the ``passgeni.targets`` entry-point group, so this pure package
never imports a database driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .._errors import (
    PassgeniError,
    StoreError,
    TargetError,
    TargetLoginFailed,
    one_line,
)
from ..client import AuthorityClient
from ..crypto import Credential
from ..model import EntropySource, GenerationParameters, check_preset, get_preset
from ..stores import (
    CertificateRefs,
    SecretStore,
    StoredCredential,
    StoreURI,
    parse_store_uri,
    store_target,
    write_proof,
)
from ._assessment import assess
from ._into_store import (
    REVOKE_REASON_NOT_STORED,
    REVOKE_REASON_ROTATED,
    StoreResult,
    _revoke_quietly,
    provision_into_store,
)
from ._keepers import check_keeper, keeper_label, with_exclusions
from ._provision import ProvisionResult, certify
from ._targets import CredentialTarget
from ._verdict import Verdict

REVOKE_REASON_NOT_APPLIED = "not applied to target"


# --- results ------------------------------------------------------------------------------------

Status = Literal[
    "created", "rotated", "replaced", "unchanged", "repaired", "would-create", "would-rotate"
]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class RotationResult:
    """What :func:`ensure_rotated` did. ``repr`` and :meth:`public_dict` hold no secret."""

    uri: StoreURI
    status: Status
    keeper: str | None
    version: str | None = None
    cert_id: str | None = None
    cert_url: str | None = None
    compliance_standard: str | None = None
    standards_met: tuple[str, ...] = ()
    entropy_bits: float | None = None
    expires_at: datetime | None = None
    previous_cert_id: str | None = None
    warnings: tuple[str, ...] = ()
    #: The credential now stored (``None`` for a dry run that would change it).
    credential: Credential | None = None

    @property
    def changed(self) -> bool:
        return self.status in ("created", "rotated", "replaced", "repaired")

    def public_dict(self) -> dict[str, Any]:
        return {
            "destination": str(self.uri),
            "status": self.status,
            "keeper": self.keeper,
            "version": self.version,
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "expires_at": _iso(self.expires_at),
            "previous_cert_id": self.previous_cert_id,
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        return (
            f"RotationResult(uri={str(self.uri)!r}, status={self.status!r}, "
            f"keeper={self.keeper!r}, version={self.version!r}, cert_id={self.cert_id!r})"
        )

    __str__ = __repr__


# --- the flow -----------------------------------------------------------------------------------


def _params_for(
    preset_id: str,
    parameters: GenerationParameters | Mapping[str, Any] | None,
    target: CredentialTarget | None,
) -> GenerationParameters:
    params = (
        GenerationParameters.for_preset(preset_id)
        if parameters is None
        else parameters
        if isinstance(parameters, GenerationParameters)
        else GenerationParameters.from_dict(dict(parameters))
    )
    if target is not None and target.excluded_characters:
        params = with_exclusions(params, target.excluded_characters)
    return params


def _result_of(stored: StoreResult, keeper: str | None, preset_id: str) -> RotationResult:
    claims = stored.provisioned.verified.claims if stored.provisioned else None
    outcome = stored.outcome
    status: Status = outcome if outcome in ("rotated", "replaced", "created") else "repaired"
    return RotationResult(
        uri=stored.uri,
        status=status,
        keeper=keeper,
        version=stored.version,
        cert_id=stored.cert_id,
        cert_url=stored.cert_url,
        compliance_standard=claims.compliance_standard if claims else preset_id,
        standards_met=tuple(claims.standards_met) if claims else (),
        entropy_bits=claims.entropy_bits if claims else None,
        expires_at=stored.refs.expires_at,
        previous_cert_id=stored.previous_cert_id,
        warnings=stored.warnings,
        credential=stored.credential,
    )


def ensure_rotated(
    client: AuthorityClient,
    store: SecretStore,
    uri: str | StoreURI,
    preset: str,
    *,
    keeper: str | None = None,
    parameters: GenerationParameters | Mapping[str, Any] | None = None,
    label: str | None = None,
    target: CredentialTarget | None = None,
    entropy_source: EntropySource | None = None,
    dry_run: bool = False,
) -> RotationResult:
    """Make sure ``uri`` holds a certified credential of ``preset`` for epoch ``keeper``.

    Idempotent: a credential already certified for this keeper (valid, bound,
    same preset and version) is left alone (``unchanged``); with a target, the
    target is checked by logging in with the stored password and repaired
    (the stored password applied again) if that fails (``repaired``). Anything
    else is rotated (or created), revoking the previous certificate (reason
    ``rotated``) once its successor is stored. ``keeper=None`` accepts any
    epoch. ``dry_run`` only reads: ``would-create``/``would-rotate``.

    Order with a target (nothing lost): certify; apply to the target and log
    in (on failure: previous password restored when known, certificate
    revoked ``not applied to target``); store with check-and-set (on failure:
    previous password restored on the target, certificate revoked ``not
    stored``); metadata; revoke the previous certificate.

    Raises:
        InvalidRequest / InvalidParameters / InvalidStoreURI: bad input.
        StoreError, TargetError, AuthorityError (and subclasses): a service
            failed; the message says what was left in which state.
    """
    target_uri = parse_store_uri(uri)
    preset_id = get_preset(preset).id
    keeper = check_keeper(keeper)
    params = _params_for(preset_id, parameters, target)
    cert_label = keeper_label(keeper, label)
    current = store.read(target_uri)
    verdict = (
        None
        if current is None
        else assess(client, store.system, current, preset=preset_id, keeper=keeper)
    )
    if current is not None and verdict is not None:
        verdict.raise_for_error()  # never rotate because the authority could not be asked
        if verdict.value_covered:
            return _keep(store, target_uri, current, verdict, keeper, target, dry_run)

    exists = current is not None and current.password is not None
    if dry_run:
        return RotationResult(
            uri=target_uri,
            status="would-rotate" if exists else "would-create",
            keeper=keeper,
            version=None if current is None else current.version,
            cert_id=None if current is None or current.refs is None else current.refs.cert_id,
        )
    if target is None:
        stored = provision_into_store(
            client,
            store,
            target_uri,
            preset_id,
            parameters=params,
            entropy_source=entropy_source,
            label=cert_label,
            rotate=exists,
        )
        assert stored.provisioned is not None or stored.outcome in ("unchanged", "repaired")
        return _result_of(stored, keeper, preset_id)
    return _rotate_with_target(
        client,
        store,
        target_uri,
        preset_id,
        params,
        cert_label,
        keeper,
        target,
        entropy_source,
    )


def _keep(
    store: SecretStore,
    uri: StoreURI,
    current: StoredCredential,
    verdict: Verdict,
    keeper: str | None,
    target: CredentialTarget | None,
    dry_run: bool,
) -> RotationResult:
    """Keep a credential the judge found covered: check the target, repair the metadata."""
    status: Status = "unchanged"
    claims, record = verdict.claims, verdict.record
    assert current.password is not None and claims is not None and record is not None
    if target is not None:
        try:
            target.test_password(current.password)
        except TargetLoginFailed:
            if dry_run:
                status = "would-rotate"
            else:
                # An earlier run stored the password but did not finish applying it.
                target.set_password(current.password)
                target.test_password(current.password)
                status = "repaired"
    refs = CertificateRefs(
        cert_id=claims.jti,
        cert_url=record.cert_url,
        standard=claims.compliance_standard,
        expires_at=claims.expires_at,
        version=current.version,
    )
    if not dry_run and (
        current.metadata_refs is None or current.metadata_refs.to_metadata() != refs.to_metadata()
    ):
        store.write_metadata(uri, refs)
        status = "repaired"
    return RotationResult(
        uri=uri,
        status=status,
        keeper=keeper,
        version=current.version,
        cert_id=claims.jti,
        cert_url=record.cert_url,
        compliance_standard=claims.compliance_standard,
        standards_met=tuple(claims.standards_met),
        entropy_bits=claims.entropy_bits,
        expires_at=claims.expires_at,
        credential=current.credential,
    )


def _restore(target: CredentialTarget, previous: str | None) -> str:
    """Put the previous password back on the target; a phrase for the error message."""
    if previous is None:
        return "there was no previous password to restore on the target"
    try:
        target.set_password(previous)
    except Exception as exc:
        return (
            f"the previous password could NOT be restored on {target.describe()} "
            f"({one_line(exc)}): re-run to finish the rotation"
        )
    return f"the previous password was restored on {target.describe()}"


def _rotate_with_target(
    client: AuthorityClient,
    store: SecretStore,
    uri: StoreURI,
    preset_id: str,
    params: GenerationParameters,
    label: str | None,
    keeper: str | None,
    target: CredentialTarget,
    entropy_source: EntropySource | None,
) -> RotationResult:
    plan = store.prepare(uri)
    previous_password = plan.current.password if plan.current is not None else None
    previous_cert = (
        plan.current.refs.cert_id
        if plan.current is not None and plan.current.refs is not None
        else None
    )
    check_preset(preset_id, params, entropy_source=entropy_source)
    result: ProvisionResult = certify(
        client,
        params,
        preset=preset_id,
        target=store_target(store, uri, plan.next_version),
        label=label,
        entropy_source=entropy_source,
    )
    credential = result.credential
    # The reference beside the credential names the standard as its certificate
    # does (claim id), as every other writer of it; see assess().
    refs = CertificateRefs(
        cert_id=result.cert_id,
        cert_url=result.cert_url,
        standard=result.verified.claims.compliance_standard,
        expires_at=result.certificate.expires_at,
        version=plan.next_version,
    )

    def fail(exc: BaseException, what: str, reason: str, restored: str) -> PassgeniError:
        failure = _revoke_quietly(client, refs.cert_id, reason)
        revoked = (
            f"certificate {refs.cert_id} was revoked (reason: {reason})"
            if failure is None
            else f"certificate {refs.cert_id} could NOT be revoked ({failure})"
        )
        cls = type(exc) if isinstance(exc, PassgeniError) else TargetError
        try:
            error = cls(f"{uri}: {what}: {one_line(exc)}; {restored}; {revoked}")
        except TypeError:  # pragma: no cover - an exotic constructor
            error = TargetError(f"{uri}: {what}: {one_line(exc)}; {restored}; {revoked}")
        return error

    applied = False
    try:
        target.set_password(credential.password)
        applied = True
        target.test_password(credential.password)
    except Exception as exc:
        restored = (
            _restore(target, previous_password) if applied else f"{target.describe()} is unchanged"
        )
        raise fail(
            exc,
            f"the new password was not applied to {target.describe()}",
            REVOKE_REASON_NOT_APPLIED,
            restored,
        ) from None

    try:
        store.check(plan, refs)
        write_proof(store, plan, credential, refs)  # before the value: nothing lost
        version = store.write(plan, credential, refs)
    except Exception as exc:
        raise fail(
            exc if isinstance(exc, PassgeniError) else StoreError(one_line(exc)),
            "the new credential was not stored",
            REVOKE_REASON_NOT_STORED,
            _restore(target, previous_password) + "; the stored credential is unchanged",
        ) from None
    refs = dataclasses.replace(refs, version=version or plan.next_version)
    try:
        store.write_metadata(uri, refs)
    except Exception as exc:
        raise (
            type(exc)(
                f"{uri}: the credential is stored (version {version}) and applied, but the "
                f"metadata was not updated: {one_line(exc)}; re-run to complete it"
            )
            if isinstance(exc, PassgeniError)
            else StoreError(one_line(exc))
        ) from None
    warnings: list[str] = []
    if previous_cert is not None and previous_cert != refs.cert_id:
        failure = _revoke_quietly(client, previous_cert, REVOKE_REASON_ROTATED)
        if failure is not None:
            warnings.append(f"the previous certificate {previous_cert} was not revoked: {failure}")
    claims = result.verified.claims
    return RotationResult(
        uri=uri,
        status="rotated" if previous_password is not None else "created",
        keeper=keeper,
        version=version,
        cert_id=refs.cert_id,
        cert_url=refs.cert_url,
        compliance_standard=claims.compliance_standard,
        standards_met=tuple(claims.standards_met),
        entropy_bits=claims.entropy_bits,
        expires_at=refs.expires_at,
        previous_cert_id=previous_cert,
        warnings=tuple(warnings),
        credential=credential,
    )
