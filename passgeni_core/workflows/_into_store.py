"""Provisioning and rotating into a secret store, in a write order that loses nothing.

:func:`provision_into_store` and :func:`rotate` call the backend's methods
(see :class:`~passgeni_core.stores.SecretStore`) in this order:

1. ``prepare``: read the current state; compute the version the write will
   create; check the store's limits that are known already. Nothing written.
2. Generate locally and certify (target = the next version). Nothing written.
3. ``check`` the limits with the real references, then ``write_proof`` (when
   the backend keeps a proof record beside the value: the seed or binding key
   and references, keeping the entry of the credential stored now), then
   ``write`` the new version (the password only; or, inline, password, seed
   and references together) with check-and-set against the version read in
   step 1. On failure the
   certificate is revoked with reason ``not stored`` and the error says so;
   the previous credential is still current.
4. ``write_metadata``: merge the references into the metadata. On failure the
   credential is stored (with its references in the value); the error says to
   re-run, which completes the metadata without generating anything.
5. ``rotate`` only: revoke the previous certificate (reason ``rotated``) now
   that its successor is stored.

Re-running the same provisioning is idempotent: a credential whose
certificate is valid and bound is left alone (its metadata completed if
needed); one whose certificate was revoked as ``not stored`` is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from .._errors import (
    PassgeniError,
    StoreConflict,
    StoreError,
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
    WritePlan,
    parse_store_uri,
    store_target,
    write_proof,
)
from ._assessment import assess
from ._provision import ProvisionResult, certify
from ._verdict import EXPIRING, METADATA_LAGGING, REVOKED, STANDARD_MISMATCH

REVOKE_REASON_NOT_STORED = "not stored"
REVOKE_REASON_ROTATED = "rotated"


# --- orchestration --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Outcome = Literal["created", "rotated", "replaced", "unchanged", "repaired"]


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class StoreResult:
    """The outcome of :func:`provision_into_store` / :func:`rotate`. ``repr`` hides secrets."""

    uri: StoreURI
    outcome: Outcome
    version: str | None
    refs: CertificateRefs
    #: The credential now stored (new, or the one already there when unchanged).
    credential: Credential | None
    #: The certification, when a new credential was made.
    provisioned: ProvisionResult | None = None
    previous_cert_id: str | None = None
    previous_revoked: bool | None = None
    warnings: tuple[str, ...] = ()

    @property
    def cert_id(self) -> str:
        return self.refs.cert_id

    @property
    def cert_url(self) -> str:
        return self.refs.cert_url

    def public_dict(self) -> dict[str, Any]:
        """References and facts only: no password, no binding key."""
        out: dict[str, Any] = {
            "store_uri": str(self.uri),
            "outcome": self.outcome,
            "version": self.version,
            "cert_id": self.refs.cert_id,
            "cert_url": self.refs.cert_url,
            "compliance_standard": self.refs.standard,
            "expires_at": _iso(self.refs.expires_at),
            "previous_cert_id": self.previous_cert_id,
            "previous_revoked": self.previous_revoked,
            "warnings": list(self.warnings),
        }
        if self.provisioned is not None:
            claims = self.provisioned.verified.claims
            out["standards_met"] = list(claims.standards_met)
            out["entropy_bits"] = claims.entropy_bits
            out["issued_at"] = _iso(claims.issued_at)
        return out

    def __repr__(self) -> str:
        return (
            f"StoreResult(uri={str(self.uri)!r}, outcome={self.outcome!r}, "
            f"version={self.version!r}, cert_id={self.refs.cert_id!r})"
        )

    __str__ = __repr__


def _same_class(exc: BaseException, message: str) -> PassgeniError:
    """An error of ``exc``'s class (for the exit code) with a new message."""
    if isinstance(exc, StoreError):
        cls: type[PassgeniError] = type(exc)
    elif isinstance(exc, PassgeniError):
        cls = type(exc)
    else:
        cls = StoreError
    try:
        new = cls(message)
    except TypeError:  # pragma: no cover - an exotic subclass constructor
        new = StoreError(message)
    if isinstance(exc, PassgeniError) and new.code != exc.code:  # pragma: no cover
        new.code = exc.code
    return new


def _landed(store: SecretStore, uri: StoreURI, refs: CertificateRefs, password: str) -> bool | None:
    """After a failed write: did it land anyway? None when the store cannot tell.

    The password is compared too: a proof record written before a value write that
    failed names the new certificate, but the value is still the previous one.
    """
    try:
        current = store.read(uri)
    except Exception:
        return None
    return (
        current is not None and refs.same_certificate(current.refs) and current.password == password
    )


def _revoke_quietly(client: AuthorityClient, cert_id: str, reason: str) -> str | None:
    """Revoke; returns None on success, else a one-line reason."""
    try:
        client.revoke(cert_id, reason)
    except Exception as exc:
        return one_line(exc)
    return None


def provision_into_store(
    client: AuthorityClient,
    store: SecretStore,
    uri: str | StoreURI,
    preset: str,
    *,
    parameters: GenerationParameters | Mapping[str, Any] | None = None,
    entropy_source: EntropySource | None = None,
    label: str | None = None,
    rotate: bool = False,
    now: datetime | None = None,
    before_write: Callable[[str], None] | None = None,
) -> StoreResult:
    """Generate, certify and store a credential at ``uri`` in the nothing-lost order.

    Without ``rotate``: creates the credential when absent; leaves a valid,
    bound credential of the same preset alone (completing its metadata when an
    earlier run stopped before it: outcome ``repaired``); replaces one whose
    certificate was revoked as ``not stored``; refuses anything else (an
    uncertified value, a drifted, expired or revoked credential, another
    preset) with :class:`StoreConflict`, since replacing a password someone
    uses is a rotation. With ``rotate``: always replaces, and revokes the old
    certificate (reason ``rotated``) after the new credential is stored.

    ``before_write`` is a test hook called with the step name
    (``"write"``, ``"metadata"``, ``"revoke-previous"``) before each step.

    Raises:
        InvalidStoreURI: ``uri`` names no single credential.
        StoreConflict: see above, or a concurrent writer (check-and-set failed).
        StoreError (and subclasses): the store refused or failed; when a
            certificate had been issued, the message says whether it was revoked.
        AuthorityError (and subclasses), InvalidParameters: as :func:`provision`.
    """

    target_uri = parse_store_uri(uri)
    preset_id = get_preset(preset).id
    hook = before_write or (lambda step: None)
    plan = store.prepare(target_uri)
    current = plan.current
    previous_cert: str | None = None
    outcome: Outcome = "created"
    if current is not None and current.password is not None:
        entry = assess(client, store.system, current, now=now, preset=preset_id)
        if not rotate:
            if entry.value_covered:  # lagging metadata is completed, not a reason to refuse
                return _complete_metadata(store, current, entry.refs, hook)
            if entry.status == "revoked" and entry.revocation_reason == REVOKE_REASON_NOT_STORED:
                outcome = "replaced"
            else:
                why = (
                    f"certified for {entry.standard}, not {preset_id}"
                    if set(entry.reasons) <= {STANDARD_MISMATCH, EXPIRING, METADATA_LAGGING}
                    else f"its status is {entry.status}"
                    + (f": {entry.detail}" if entry.detail else "")
                )
                raise StoreConflict(
                    f"{target_uri} already holds a credential ({why}); replacing it is a "
                    "rotation: use rotate (passgeni provision --rotate)"
                )
        else:
            outcome = "rotated"
            if current.refs is not None and not entry.has(REVOKED):
                previous_cert = current.refs.cert_id
    elif rotate and current is not None:
        outcome = "rotated"

    # 2. generate and certify: nothing is written yet.
    params = (
        GenerationParameters.for_preset(preset_id)
        if parameters is None
        else parameters
        if isinstance(parameters, GenerationParameters)
        else GenerationParameters.from_dict(dict(parameters))
    )
    check_preset(preset_id, params, entropy_source=entropy_source)
    result = certify(
        client,
        params,
        preset=preset_id,
        target=store_target(store, target_uri, plan.next_version),
        label=label,
        entropy_source=entropy_source,
    )
    return store_certified(
        client,
        store,
        plan,
        result,
        outcome=outcome,
        previous_cert=previous_cert,
        before_write=hook,
    )


def store_certified(
    client: AuthorityClient,
    store: SecretStore,
    plan: WritePlan,
    result: ProvisionResult,
    *,
    outcome: Outcome,
    previous_cert: str | None = None,
    before_write: Callable[[str], None] | None = None,
) -> StoreResult:
    """Steps 3-5 of the write order for a credential certified against ``plan``.

    ``result`` must have been certified with ``store_target(store, plan.uri,
    plan.next_version)``. Writes the value (check-and-set), then the metadata,
    then revokes ``previous_cert`` (reason ``rotated``); on a failed value
    write the new certificate is revoked (reason ``not stored``) and the error
    says so, exactly as :func:`provision_into_store` (which calls this).
    """
    hook = before_write or (lambda step: None)
    target_uri = plan.uri
    credential = result.credential
    preset_id = result.verified.claims.compliance_standard
    refs = CertificateRefs(
        cert_id=result.cert_id,
        cert_url=result.cert_url,
        standard=preset_id,
        expires_at=result.certificate.expires_at,
        version=plan.next_version,
    )

    # 3. the proof record (seed or binding key, references), then the value.
    try:
        hook("write")
        store.check(plan, refs)
        # The proof record first (when the backend keeps one), then the value.
        write_proof(store, plan, credential, refs)
        version = store.write(plan, credential, refs)
    except Exception as exc:
        landed = _landed(store, target_uri, refs, credential.password)
        if landed:
            version = plan.next_version or ""
        else:
            failure = _revoke_quietly(client, refs.cert_id, REVOKE_REASON_NOT_STORED)
            maybe = (
                " (the store could not confirm whether the write was applied; re-running "
                "completes the job)"
                if landed is None
                else ""
            )
            revoked = (
                f"certificate {refs.cert_id} was revoked (reason: {REVOKE_REASON_NOT_STORED})"
                if failure is None
                else f"certificate {refs.cert_id} could NOT be revoked ({failure}); revoke it "
                f"with `passgeni revoke {refs.cert_id} --reason '{REVOKE_REASON_NOT_STORED}'`"
            )
            raise _same_class(
                exc,
                f"{target_uri}: the new credential was not stored: {one_line(exc)}; "
                f"{revoked}; the previous credential is unchanged{maybe}",
            ) from None
    if plan.next_version is not None and version != plan.next_version:
        # A backend broke its contract: the certificate names another version.
        raise StoreError(
            f"{target_uri}: the store wrote version {version}, not the certified "
            f"{plan.next_version}; the credential is stored but its certificate names "
            "another version (a scan reports it as drifted); rotate it"
        )
    refs = replace(refs, version=version or plan.next_version)

    # 4. metadata for auditors.
    try:
        hook("metadata")
        store.write_metadata(target_uri, refs)
    except Exception as exc:
        # The successor is stored (the value is authoritative), so the previous
        # certificate goes now: a re-run only completes the metadata and would
        # never learn which certificate the replaced credential had.
        previous_note = ""
        if previous_cert is not None:
            failure = _revoke_quietly(client, previous_cert, REVOKE_REASON_ROTATED)
            previous_note = (
                f"; the previous certificate {previous_cert} was revoked (reason: rotated)"
                if failure is None
                else f"; the previous certificate {previous_cert} could NOT be revoked "
                f"({failure}): revoke it with `passgeni revoke {previous_cert} --reason rotated`"
            )
        raise _same_class(
            exc,
            f"{target_uri}: the credential is stored (version {version}, certificate "
            f"{refs.cert_id} referenced in its value) but the metadata was not updated: "
            f"{one_line(exc)}; re-run the same command to complete it{previous_note}",
        ) from None

    # 5. rotation: the old certificate goes only now that its successor is stored.
    warnings: list[str] = []
    revoked_previous: bool | None = None
    if previous_cert is not None:
        hook("revoke-previous")
        failure = _revoke_quietly(client, previous_cert, REVOKE_REASON_ROTATED)
        revoked_previous = failure is None
        if failure is not None:
            warnings.append(
                f"the previous certificate {previous_cert} could not be revoked ({failure}); "
                f"revoke it with `passgeni revoke {previous_cert} --reason rotated`"
            )
    return StoreResult(
        uri=target_uri,
        outcome=outcome,
        version=version,
        refs=refs,
        credential=credential,
        provisioned=result,
        previous_cert_id=previous_cert,
        previous_revoked=revoked_previous,
        warnings=tuple(warnings),
    )


def _complete_metadata(
    store: SecretStore,
    current: StoredCredential,
    refs: CertificateRefs | None,
    hook: Callable[[str], None],
) -> StoreResult:
    assert refs is not None
    refs = replace(refs, version=current.version)
    outcome: Outcome = "unchanged"
    meta = current.metadata_refs
    if meta is None or meta.to_metadata() != refs.to_metadata():
        hook("metadata")
        try:
            store.write_metadata(current.uri, refs)
        except Exception as exc:
            raise _same_class(
                exc,
                f"{current.uri}: the credential is stored with certificate {refs.cert_id} "
                f"but its metadata could not be completed: {one_line(exc)}; re-run to complete it",
            ) from None
        outcome = "repaired"
    return StoreResult(
        uri=current.uri,
        outcome=outcome,
        version=current.version,
        refs=refs,
        credential=current.credential,
    )


def rotate(
    client: AuthorityClient,
    store: SecretStore,
    uri: str | StoreURI,
    preset: str,
    **options: Any,
) -> StoreResult:
    """Replace the credential at ``uri`` with a new certified one, then revoke the old certificate.

    Same write order and errors as :func:`provision_into_store` (``rotate=True``).
    """
    return provision_into_store(client, store, uri, preset, rotate=True, **options)
