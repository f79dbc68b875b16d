"""Rotation: epochs ("keepers"), credential targets, and the idempotent ensure/rotate flow.

A *keeper* is a rotation epoch chosen by the user (Terraform's ``keeper``, a
bulk rotation's ``epoch``: a date, a ticket number, ``"2026-q4"``). It is
recorded in the certificate itself, as the end of its ``label``
(``keeper=K``, or ``LABEL | keeper=K``), so the epoch is signed evidence and
no store needs a field of its own for it. :func:`ensure_rotated` reads the
stored credential's certificate and

* leaves the credential alone when its certificate is valid, of the same
  preset, bound to the stored value, for the stored version, and of the same
  keeper (so re-running a Terraform plan or a bulk rotation changes nothing);
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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from ._binding import Credential, verify_binding
from ._client import AuthorityClient, CertificateRecord
from ._entropy_source import EntropySource
from ._errors import (
    InvalidRequest,
    InvalidToken,
    NotFound,
    PassgeniError,
    StoreError,
)
from ._generator import generate
from ._params import GenerationParameters
from ._presets import get_preset
from ._provision import ProvisionResult, certify
from ._standards import check_preset
from ._stores import (
    REVOKE_REASON_NOT_STORED,
    REVOKE_REASON_ROTATED,
    CertificateRefs,
    SecretStore,
    StoredCredential,
    StoreURI,
    parse_store_uri,
    provision_into_store,
)
from ._verify import verify_certificate

__all__ = [
    "MAX_KEEPER",
    "REVOKE_REASON_NOT_APPLIED",
    "TARGET_ENTRY_POINT_GROUP",
    "CredentialTarget",
    "InventoryEntry",
    "RotationResult",
    "TargetError",
    "TargetLoginFailed",
    "TargetUnavailable",
    "check_keeper",
    "ensure_rotated",
    "keeper_label",
    "keeper_of",
    "open_target",
    "parse_inventory",
    "register_target",
    "with_exclusions",
]

TARGET_ENTRY_POINT_GROUP = "passgeni.targets"
REVOKE_REASON_NOT_APPLIED = "not applied to target"
MAX_KEEPER = 100
_MAX_LABEL = 200
_KEEPER_MARK = "keeper="
_KEEPER_SEP = " | "


# --- errors -------------------------------------------------------------------------------------


class TargetError(PassgeniError):
    """A credential target (a database...) refused or failed an operation."""

    code = "target_error"
    http_status = 502


class TargetUnavailable(TargetError):
    """The target could not be reached."""

    code = "target_unavailable"
    http_status = 503


class TargetLoginFailed(TargetError):
    """Logging in to the target with the credential failed."""

    code = "target_login_failed"


# --- targets ------------------------------------------------------------------------------------


@runtime_checkable
class CredentialTarget(Protocol):
    """A system that uses the credential: the rotation applies the password there.

    Methods raise :class:`TargetError` subclasses only, with messages that
    never contain a password (the target's or its admin connection's).
    """

    #: Short kind name (``"postgresql"``).
    system: str
    #: Characters the target (or connection strings to it) cannot take; merged
    #: into the generation parameters' ``exclude``.
    excluded_characters: str

    def describe(self) -> str:
        """Where the target is (host, role...): no secret."""
        ...

    def set_password(self, password: str) -> None:
        """Make ``password`` the credential's password on the target."""
        ...

    def test_password(self, password: str) -> None:
        """Log in with ``password``; :class:`TargetLoginFailed` if refused."""
        ...

    def close(self) -> None: ...


_targets_lock = threading.Lock()
_registered_targets: dict[str, Callable[..., CredentialTarget]] = {}


def register_target(kind: str, factory: Callable[..., CredentialTarget] | None) -> None:
    """Register (or with ``None`` unregister) a target factory for ``kind`` in this process."""
    with _targets_lock:
        if factory is None:
            _registered_targets.pop(kind, None)
        else:
            _registered_targets[kind] = factory


def open_target(kind: str, options: Mapping[str, Any]) -> CredentialTarget:
    """A target of ``kind`` configured by ``options`` (the entry point's ``from_options``).

    Raises:
        InvalidRequest: no target of that kind is installed, or bad options.
        TargetError: the target's module failed to load.
    """
    with _targets_lock:
        factory = _registered_targets.get(kind)
    if factory is None:
        chosen = [ep for ep in entry_points(group=TARGET_ENTRY_POINT_GROUP) if ep.name == kind]
        if not chosen:
            known = sorted(
                {ep.name for ep in entry_points(group=TARGET_ENTRY_POINT_GROUP)}
                | set(_registered_targets)
            )
            raise InvalidRequest(
                f"unknown target type {kind[:40]!r} (installed: {', '.join(known) or 'none'})"
            )
        try:
            obj = chosen[0].load()
        except Exception as exc:
            raise TargetError(
                f"the {kind} target ({chosen[0].value}) failed to load: {type(exc).__name__}; "
                "is its extra installed (passgeni[postgres])?"
            ) from None
        factory = getattr(obj, "from_options", obj)
    return factory(dict(options))


# --- keepers ------------------------------------------------------------------------------------


def check_keeper(keeper: object) -> str | None:
    """Validate a keeper: ``None``/``""`` (no epoch) or 1-100 printable ASCII characters.

    Raises:
        InvalidRequest: not a string, too long, or a control/non-ASCII character.
    """
    if keeper is None or keeper == "":
        return None
    if not isinstance(keeper, str):
        raise InvalidRequest("keeper must be a string")
    if len(keeper) > MAX_KEEPER:
        raise InvalidRequest(f"keeper is longer than {MAX_KEEPER} characters")
    if not all(0x20 <= ord(c) < 0x7F for c in keeper) or keeper != keeper.strip():
        raise InvalidRequest(
            "keeper may only hold printable ASCII characters, without leading or trailing spaces"
        )
    return keeper


def keeper_label(keeper: str | None, label: str | None = None) -> str | None:
    """The certificate label recording ``keeper`` after the user's ``label``.

    Raises:
        InvalidRequest: the combined label is longer than 200 characters.
    """
    if keeper is None:
        return label or None
    mark = f"{_KEEPER_MARK}{keeper}"
    combined = f"{label}{_KEEPER_SEP}{mark}" if label else mark
    if len(combined) > _MAX_LABEL:
        raise InvalidRequest(f"label and keeper together are longer than {_MAX_LABEL} characters")
    return combined


def keeper_of(label: str | None) -> str | None:
    """The keeper recorded in a certificate label (``None`` if there is none)."""
    if not label:
        return None
    if label.startswith(_KEEPER_MARK):
        return label[len(_KEEPER_MARK) :] or None
    _head, sep, tail = label.rpartition(_KEEPER_SEP + _KEEPER_MARK)
    return tail or None if sep else None


def with_exclusions(params: GenerationParameters, chars: str) -> GenerationParameters:
    """``params`` with ``chars`` added to ``exclude`` (a target's forbidden characters)."""
    extra = "".join(ch for ch in dict.fromkeys(chars) if ch not in params.exclude)
    if not extra:
        return params
    return dataclasses.replace(params, exclude=params.exclude + extra)


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


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PassgeniError):
        return exc.message
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _revoke_quietly(client: AuthorityClient, cert_id: str, reason: str) -> str | None:
    try:
        client.revoke(cert_id, reason)
    except Exception as exc:
        return _one_line(exc)
    return None


def _is_current_epoch(
    client: AuthorityClient,
    current: StoredCredential,
    preset_id: str,
    keeper: str | None,
) -> CertificateRecord | None:
    """The stored credential's certificate record when it is this epoch's, else ``None``."""
    if current.password is None or current.binding_key is None or current.refs is None:
        return None
    try:
        record = client.get_certificate(current.refs.cert_id)
    except NotFound:
        return None
    if record.status != "valid" or record.compliance_standard != preset_id:
        return None
    if keeper is not None and keeper_of(record.label) != keeper:
        return None
    if (
        record.target is not None
        and record.target.version is not None
        and current.version is not None
        and record.target.version != current.version
    ):
        return None  # a later version was written over the certified one
    try:
        verified = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
        verify_binding(verified, current.password, current.binding_key)
    except InvalidToken:
        return None  # drifted (value changed) or not verifiable: rotate
    return record


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
    record = None if current is None else _is_current_epoch(client, current, preset_id, keeper)

    if current is not None and record is not None:
        return _keep(client, store, target_uri, current, record, keeper, target, dry_run)

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
        claims = stored.provisioned.verified.claims if stored.provisioned else None
        return RotationResult(
            uri=target_uri,
            status="rotated"
            if stored.outcome == "rotated"
            else "replaced"
            if stored.outcome == "replaced"
            else "created"
            if stored.outcome == "created"
            else "repaired",
            keeper=keeper,
            version=stored.version,
            cert_id=stored.cert_id,
            cert_url=stored.cert_url,
            compliance_standard=preset_id,
            standards_met=tuple(claims.standards_met) if claims else (),
            entropy_bits=claims.entropy_bits if claims else None,
            expires_at=stored.refs.expires_at,
            previous_cert_id=stored.previous_cert_id,
            warnings=stored.warnings,
            credential=stored.credential,
        )
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
    client: AuthorityClient,
    store: SecretStore,
    uri: StoreURI,
    current: StoredCredential,
    record: CertificateRecord,
    keeper: str | None,
    target: CredentialTarget | None,
    dry_run: bool,
) -> RotationResult:
    status: Status = "unchanged"
    assert current.password is not None
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
        cert_id=record.cert_id,
        cert_url=record.cert_url,
        standard=record.compliance_standard,
        expires_at=record.expires_at,
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
        cert_id=record.cert_id,
        cert_url=record.cert_url,
        compliance_standard=record.compliance_standard,
        standards_met=record.standards_met,
        entropy_bits=record.entropy_bits,
        expires_at=record.expires_at,
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
            f"({_one_line(exc)}): re-run to finish the rotation"
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
    generated = generate(params, entropy_source=entropy_source)
    credential = Credential.create(generated.password)
    result: ProvisionResult = certify(
        client,
        generated,
        credential,
        preset=preset_id,
        target=uri.target(store.system, plan.next_version),
        label=label,
    )
    refs = CertificateRefs(
        cert_id=result.cert_id,
        cert_url=result.cert_url,
        standard=preset_id,
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
            error = cls(f"{uri}: {what}: {_one_line(exc)}; {restored}; {revoked}")
        except TypeError:  # pragma: no cover - an exotic constructor
            error = TargetError(f"{uri}: {what}: {_one_line(exc)}; {restored}; {revoked}")
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
        version = store.write(plan, credential, refs)
    except Exception as exc:
        raise fail(
            exc if isinstance(exc, PassgeniError) else StoreError(_one_line(exc)),
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
                f"metadata was not updated: {_one_line(exc)}; re-run to complete it"
            )
            if isinstance(exc, PassgeniError)
            else StoreError(_one_line(exc))
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
        compliance_standard=preset_id,
        standards_met=tuple(claims.standards_met),
        entropy_bits=claims.entropy_bits,
        expires_at=refs.expires_at,
        previous_cert_id=previous_cert,
        warnings=tuple(warnings),
        credential=credential,
    )


# --- bulk rotation inventory --------------------------------------------------------------------

_ENTRY_KEYS = frozenset(
    {
        "name",
        "destination",
        "preset",
        "keeper",
        "label",
        "length",
        "exclude",
        "special_chars",
        "exclude_lookalikes",
        "postgres",
        "target",
    }
)
_TOP_KEYS = frozenset({"epoch", "defaults", "credentials"})
_PARAM_KEYS = ("length", "exclude", "special_chars", "exclude_lookalikes")


@dataclass(frozen=True, kw_only=True, repr=False)
class InventoryEntry:
    """One credential of a bulk rotation. ``repr`` shows no target option (may hold a password)."""

    name: str
    destination: StoreURI
    preset: str
    keeper: str | None
    label: str | None = None
    parameters: GenerationParameters
    target_kind: str | None = None
    target_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"InventoryEntry(name={self.name!r}, destination={str(self.destination)!r}, "
            f"preset={self.preset!r}, keeper={self.keeper!r}, target={self.target_kind!r})"
        )


def _entry_error(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"inventory {where}: {message}")


def parse_inventory(data: object, *, epoch: str | None = None) -> list[InventoryEntry]:
    """Validate a bulk-rotation inventory (already parsed from YAML or JSON).

    Format::

        epoch: "2026-q4"              # the keeper of every entry (``--epoch`` overrides)
        defaults: {preset: soc2, length: 24, exclude: "@/"}
        credentials:
          - name: billing-db          # optional; defaults to the destination
            destination: vault://secret/prod/billing#password
            preset: pci-dss           # else defaults.preset
            keeper: "2026-q4-b"       # optional per-entry override of the epoch
            postgres:                 # optional: apply the password to this role
              conninfo: "host=db1 port=5432 dbname=billing user=admin"
              role: billing_app
          - destination: aws-sm://prod/api#token
            target: {type: postgresql, ...}   # the general form (passgeni.targets kinds)

    Raises:
        InvalidRequest / InvalidStoreURI / InvalidParameters: the message names
            the entry (by index and name) and the problem.
    """
    if not isinstance(data, dict):
        raise InvalidRequest("the inventory must be a mapping with a 'credentials' list")
    unknown = sorted(str(k) for k in data if k not in _TOP_KEYS)
    if unknown:
        raise InvalidRequest(
            f"inventory: unknown key(s) {', '.join(unknown[:5])} (known: credentials, "
            "defaults, epoch)"
        )
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InvalidRequest("inventory: 'defaults' must be a mapping")
    bad_defaults = sorted(str(k) for k in defaults if k not in _ENTRY_KEYS - {"name"})
    if bad_defaults:
        raise InvalidRequest(f"inventory defaults: unknown key(s) {', '.join(bad_defaults)}")
    raw_epoch = epoch if epoch is not None else data.get("epoch")
    if raw_epoch is not None and not isinstance(raw_epoch, str | int):
        raise InvalidRequest("inventory: 'epoch' must be a string")
    base_keeper = check_keeper(None if raw_epoch is None else str(raw_epoch))
    items = data.get("credentials")
    if not isinstance(items, list) or not items:
        raise InvalidRequest("inventory: 'credentials' must be a non-empty list")
    entries: list[InventoryEntry] = []
    seen_names: set[str] = set()
    seen_uris: set[str] = set()
    for index, item in enumerate(items, 1):
        where = f"entry {index}"
        if not isinstance(item, dict):
            raise _entry_error(where, "must be a mapping")
        merged = {**defaults, **item}
        unknown = sorted(str(k) for k in item if k not in _ENTRY_KEYS)
        if unknown:
            raise _entry_error(
                where,
                f"unknown key(s) {', '.join(unknown[:5])} (known: {', '.join(sorted(_ENTRY_KEYS))})",
            )
        destination = merged.get("destination")
        if not isinstance(destination, str) or not destination:
            raise _entry_error(where, "'destination' (a store URI) is required")
        try:
            uri = parse_store_uri(destination)
        except PassgeniError as exc:
            raise type(exc)(f"inventory {where}: {exc.message}") from None
        name = merged.get("name", str(uri))
        if not isinstance(name, str) or not name:
            raise _entry_error(where, "'name' must be a non-empty string")
        where = f"entry {index} ({name})"
        if name in seen_names or str(uri) in seen_uris:
            raise _entry_error(where, "duplicate name or destination")
        seen_names.add(name)
        seen_uris.add(str(uri))
        preset = merged.get("preset")
        if not isinstance(preset, str) or not preset:
            raise _entry_error(where, "'preset' is required (here or in defaults)")
        keeper_value = item.get("keeper", base_keeper)
        keeper = check_keeper(None if keeper_value is None else str(keeper_value))
        label = merged.get("label")
        if label is not None and not isinstance(label, str):
            raise _entry_error(where, "'label' must be a string")
        options = {k: merged[k] for k in _PARAM_KEYS if merged.get(k) is not None}
        try:
            params = GenerationParameters.for_preset(preset, **options)
            preset_id = get_preset(preset).id
        except TypeError:
            raise _entry_error(where, "a generation option has the wrong type") from None
        except PassgeniError as exc:
            raise type(exc)(f"inventory {where}: {exc.message}") from None
        kind: str | None = None
        target_options: dict[str, Any] = {}
        if "postgres" in item and "target" in item:
            raise _entry_error(where, "give 'postgres' or 'target', not both")
        if item.get("postgres") is not None:
            if not isinstance(item["postgres"], dict):
                raise _entry_error(where, "'postgres' must be a mapping (conninfo, role...)")
            kind, target_options = "postgresql", dict(item["postgres"])
        elif item.get("target") is not None:
            spec = item["target"]
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                raise _entry_error(where, "'target' must be a mapping with a 'type'")
            kind = spec["type"]
            target_options = {k: v for k, v in spec.items() if k != "type"}
        entries.append(
            InventoryEntry(
                name=name,
                destination=uri,
                preset=preset_id,
                keeper=keeper,
                label=label,
                parameters=params,
                target_kind=kind,
                target_options=target_options,
            )
        )
    return entries
