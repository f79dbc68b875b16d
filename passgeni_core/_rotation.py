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
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from ._binding import Credential, verify_binding
from ._client import AuthorityClient, CertificateRecord, IssuedCertificate
from ._entropy_source import EntropySource
from ._errors import (
    InvalidRequest,
    InvalidToken,
    NotFound,
    PassgeniError,
    StoreError,
    one_line,
)
from ._generator import generate
from ._params import GenerationParameters
from ._presets import get_preset
from ._provision import CertifyRequest, ProvisionResult, accept_issued, certify, issue_many
from ._standards import check_preset
from ._stores import (
    REVOKE_REASON_NOT_STORED,
    REVOKE_REASON_ROTATED,
    CertificateRefs,
    SecretStore,
    StoredCredential,
    StoreResult,
    StoreURI,
    WritePlan,
    _revoke_quietly,
    parse_store_uri,
    plan_absent,
    provision_into_store,
    store_certified,
)
from ._verify import verify_certificate

__all__ = [
    "DEFAULT_CHUNK",
    "MAX_KEEPER",
    "REVOKE_REASON_NOT_APPLIED",
    "TARGET_ENTRY_POINT_GROUP",
    "BulkOutcome",
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
    "rotate_many",
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
    return _judge_epoch(client, current, record, preset_id, keeper)


def _judge_epoch(
    client: AuthorityClient,
    current: StoredCredential,
    record: CertificateRecord,
    preset_id: str,
    keeper: str | None,
) -> CertificateRecord | None:
    """``record`` (the stored credential's certificate) when it is this epoch's, else ``None``."""
    if current.password is None or current.binding_key is None:
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
        compliance_standard=preset_id,
        standards_met=tuple(claims.standards_met),
        entropy_bits=claims.entropy_bits,
        expires_at=refs.expires_at,
        previous_cert_id=previous_cert,
        warnings=tuple(warnings),
        credential=credential,
    )


# --- bulk rotation: the batch pipeline ------------------------------------------------------

#: Credentials certified per authority round trip in :func:`rotate_many`.
DEFAULT_CHUNK = 100

BulkOutcome = RotationResult | Exception


@dataclass(eq=False, repr=False)
class _Pending:
    """One credential of a chunk between its read and its write (no repr: holds a secret)."""

    index: int
    entry: InventoryEntry
    plan: WritePlan | None = None
    previous_cert: str | None = None
    exists: bool = False
    system: str = ""
    #: The generated credential, ready to certify (set by :func:`_prepare_one`).
    request: CertifyRequest | None = None


class _Checked:
    """Generation parameters already checked against their preset (shared by the workers)."""

    def __init__(self, entropy_source: EntropySource | None) -> None:
        self.entropy_source = entropy_source
        self._done: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def params(self, entry: InventoryEntry) -> tuple[str, GenerationParameters]:
        preset_id = get_preset(entry.preset).id
        params = _params_for(preset_id, entry.parameters, None)
        key = (preset_id, repr(params))
        with self._lock:
            known = key in self._done
        if not known:
            check_preset(preset_id, params, entropy_source=self.entropy_source)
            with self._lock:
                self._done.add(key)
        return preset_id, params


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
        compliance_standard=preset_id,
        standards_met=tuple(claims.standards_met) if claims else (),
        entropy_bits=claims.entropy_bits if claims else None,
        expires_at=stored.refs.expires_at,
        previous_cert_id=stored.previous_cert_id,
        warnings=stored.warnings,
        credential=stored.credential,
    )


def rotate_many(
    client: AuthorityClient,
    entries: Sequence[InventoryEntry],
    *,
    store_for: Callable[[StoreURI], SecretStore],
    concurrency: int = 8,
    chunk_size: int = DEFAULT_CHUNK,
    dry_run: bool = False,
    entropy_source: EntropySource | None = None,
    target_for: Callable[[InventoryEntry], CredentialTarget] | None = None,
    on_done: Callable[[int, BulkOutcome], None] | None = None,
) -> list[BulkOutcome]:
    """:func:`ensure_rotated` for many credentials, batched (``passgeni rotate``).

    Same decisions, write order and guarantees per credential as
    :func:`ensure_rotated`, in fewer round trips. Per chunk of ``chunk_size``
    credentials:

    1. read each store once: the read that plans the write also decides
       whether the credential is already this epoch's (then it is kept);
       backends with ``plan_absent`` list a folder instead of reading each
       absent secret. Then generate locally;
    2. certify the whole chunk with one ``POST /api/generate-batch`` per
       distinct parameters and one ``POST /api/generate-certificates``;
    3. per credential, ``concurrency`` at a time: verify its certificate
       offline (a refused one is revoked), write the value (check-and-set),
       then the metadata, then revoke the previous certificate. A failed
       write revokes the new certificate (reason ``not stored``) and leaves
       the previous credential current (:func:`store_certified`).

    The next chunk is read and certified while the previous one is written
    (the first chunks are smaller, so that writing starts early).
    Entries with a target (a PostgreSQL role), and every entry of a dry run,
    go through :func:`ensure_rotated` one by one (``target_for`` opens an
    entry's target, by default :func:`open_target`). If the run is
    interrupted, certificates whose write had not started are revoked.

    ``store_for(uri)`` returns the store to use for ``uri`` in the calling
    thread (it is called from worker threads). Returns one outcome per entry,
    in order: a :class:`RotationResult`, or the exception that entry failed
    with (nothing is raised for one entry's failure). ``on_done(index,
    outcome)`` is called (serialised) as each entry finishes.
    """
    if chunk_size < 1:
        raise InvalidRequest("chunk_size must be at least 1")
    results: list[BulkOutcome | None] = [None] * len(entries)
    lock = threading.Lock()

    def finish(index: int, outcome: BulkOutcome) -> None:
        with lock:
            results[index] = outcome
            if on_done is not None:
                on_done(index, outcome)

    def guarded(index: int, work: Callable[[], BulkOutcome | None]) -> None:
        try:
            outcome = work()
        except Exception as exc:  # one entry's failure must not stop the others
            outcome = exc
        if outcome is not None:
            finish(index, outcome)

    singles = [i for i, e in enumerate(entries) if dry_run or e.target_kind is not None]
    batched = [i for i, e in enumerate(entries) if not dry_run and e.target_kind is None]
    chunks = _chunked(batched, chunk_size)
    checked = _Checked(entropy_source)
    writes: list[tuple[Future[None], str]] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:

        def prepare(chunk: list[int]) -> list[tuple[_Pending, Future[None]]]:
            return _submit_prepares(client, entries, chunk, store_for, checked, pool, guarded)

        try:
            prepared = prepare(chunks[0]) if chunks else []
            for k in range(len(chunks)):
                ready = _collect(prepared)
                if k + 1 < len(chunks):
                    # Queued before this chunk's writes: read and generate while they run.
                    prepared = prepare(chunks[k + 1])
                requests = [item.request for item in ready if item.request is not None]
                for item, issued in zip(ready, issue_many(client, requests), strict=True):
                    if isinstance(issued, PassgeniError):
                        finish(item.index, issued)
                        continue
                    write = functools.partial(_write_one, client, item, issued, store_for)
                    writes.append((pool.submit(guarded, item.index, write), issued.cert_id))
            for i in singles:
                single = functools.partial(
                    _single, client, entries[i], store_for, dry_run, entropy_source, target_for
                )
                pool.submit(guarded, i, single)
            pool.shutdown(wait=True)  # in the try: an interrupt while waiting is handled too
        except BaseException:
            # Interrupted: certificates whose write never started are revoked
            # (their credentials will never be stored); running writes finish;
            # queued reads and one-by-one entries do not start.
            cancelled = [cert_id for future, cert_id in writes if future.cancel()]
            pool.shutdown(wait=False, cancel_futures=True)
            for cert_id in cancelled:
                _revoke_quietly(client, cert_id, REVOKE_REASON_NOT_STORED)
            raise
    missing = [i for i, r in enumerate(results) if r is None]
    for i in missing:  # pragma: no cover - every path finishes its entries
        results[i] = StoreError(f"{entries[i].destination}: not processed")
    return [r for r in results if r is not None]


def _chunked(indexes: list[int], size: int) -> list[list[int]]:
    """Chunks of ``size``, ramping up from a quarter of it so the first writes start early."""
    out: list[list[int]] = []
    step = max(1, size // 4)
    start = 0
    while start < len(indexes):
        out.append(indexes[start : start + step])
        start += step
        step = min(size, step * 2)
    return out


def _single(
    client: AuthorityClient,
    entry: InventoryEntry,
    store_for: Callable[[StoreURI], SecretStore],
    dry_run: bool,
    entropy_source: EntropySource | None,
    target_for: Callable[[InventoryEntry], CredentialTarget] | None,
) -> RotationResult:
    target = None
    try:
        if entry.target_kind is not None:
            target = (
                target_for(entry)
                if target_for is not None
                else open_target(entry.target_kind, entry.target_options)
            )
        return ensure_rotated(
            client,
            store_for(entry.destination),
            entry.destination,
            entry.preset,
            keeper=entry.keeper,
            parameters=entry.parameters,
            label=entry.label,
            target=target,
            entropy_source=entropy_source,
            dry_run=dry_run,
        )
    finally:
        if target is not None:
            target.close()


def _submit_prepares(
    client: AuthorityClient,
    entries: Sequence[InventoryEntry],
    chunk: list[int],
    store_for: Callable[[StoreURI], SecretStore],
    checked: _Checked,
    pool: ThreadPoolExecutor,
    guarded: Callable[[int, Callable[[], BulkOutcome | None]], None],
) -> list[tuple[_Pending, Future[None]]]:
    """Start a chunk: plans of listed-absent secrets now, reads and generation in the pool."""
    by_scheme: dict[str, list[int]] = {}
    for i in chunk:
        by_scheme.setdefault(entries[i].destination.scheme, []).append(i)
    known: dict[int, WritePlan] = {}
    systems: dict[str, str] = {}
    for scheme, indexes in by_scheme.items():
        try:
            store = store_for(entries[indexes[0]].destination)
        except Exception:  # noqa: S112 - each entry reports it from its own read
            continue
        systems[scheme] = store.system
        plans = plan_absent(store, [entries[i].destination for i in indexes])
        known.update({i: p for i, p in zip(indexes, plans, strict=True) if p is not None})
    out: list[tuple[_Pending, Future[None]]] = []
    for i in chunk:
        entry = entries[i]
        item = _Pending(
            index=i,
            entry=entry,
            plan=known.get(i),
            system=systems.get(entry.destination.scheme, ""),
        )
        work = functools.partial(_prepare_one, client, item, store_for, checked)
        out.append((item, pool.submit(guarded, i, work)))
    return out


def _prepare_one(
    client: AuthorityClient,
    item: _Pending,
    store_for: Callable[[StoreURI], SecretStore],
    checked: _Checked,
) -> RotationResult | None:
    """Plan one write (one store read unless listed absent) and generate its credential.

    Returns a result when the credential is this epoch's and is kept.
    """
    entry = item.entry
    keeper = check_keeper(entry.keeper)
    preset_id, params = checked.params(entry)
    label = keeper_label(keeper, entry.label)
    plan = item.plan
    if plan is None:
        store = store_for(entry.destination)
        item.system = store.system
        plan = store.prepare(entry.destination)
        current = plan.current
        if current is not None and current.password is not None:
            item.exists = True
            if current.refs is not None:
                try:
                    record: CertificateRecord | None = client.get_certificate(current.refs.cert_id)
                except NotFound:
                    record = None
                if record is not None:
                    mine = _judge_epoch(client, current, record, preset_id, keeper)
                    if mine is not None:
                        uri = entry.destination
                        return _keep(client, store, uri, current, mine, keeper, None, False)
                if record is None or record.status != "revoked":
                    item.previous_cert = current.refs.cert_id
    generated = generate(params, entropy_source=checked.entropy_source)
    item.request = CertifyRequest(
        generated=generated,
        credential=Credential.create(generated.password),
        preset=preset_id,
        target=entry.destination.target(item.system, plan.next_version),
        label=label,
    )
    item.plan = plan
    return None


def _collect(prepared: list[tuple[_Pending, Future[None]]]) -> list[_Pending]:
    """The chunk's credentials ready to certify (kept or failed ones are finished)."""
    out = []
    for item, future in prepared:
        future.result()
        if item.request is not None:
            out.append(item)
    return out


def _write_one(
    client: AuthorityClient,
    item: _Pending,
    issued: IssuedCertificate,
    store_for: Callable[[StoreURI], SecretStore],
) -> RotationResult:
    """Verify the certificate (revoked if refused), then store in the nothing-lost order."""
    assert item.plan is not None and item.request is not None
    entry = item.entry
    result = accept_issued(client, item.request, issued)
    stored = store_certified(
        client,
        store_for(entry.destination),
        item.plan,
        result,
        outcome="rotated" if item.exists else "created",
        previous_cert=item.previous_cert,
    )
    return _result_of(stored, check_keeper(entry.keeper), item.request.preset)


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
