"""Secret stores: one URI grammar, one protocol, and a write order that loses nothing.

Destinations
============

A credential's home is named by one URI, the same everywhere (CLI, Ansible,
Terraform, the Kubernetes operator)::

    store-uri   = scheme "://" location [ "#" key ]

    vault://MOUNT/PATH#KEY       HashiCorp Vault / OpenBao, KV version 2
        MOUNT   = segment                      the KV v2 mount (one segment, e.g. "secret")
        PATH    = segment *( "/" segment )     the secret's path inside the mount
    aws-sm://NAME#KEY            AWS Secrets Manager
        NAME    = 1*512 ( ALPHA / DIGIT / "/" / "_" / "+" / "=" / "." / "@" / "-" )
                                               the secret's name (not an ARN)
    k8s://NAMESPACE/NAME#KEY     a Kubernetes Secret
        NAMESPACE = RFC 1123 label (lower-case alphanumerics and "-", at most 63)
        NAME      = RFC 1123 subdomain (lower-case alphanumerics, "-" and ".", at most 253)

    segment = 1*( ALPHA / DIGIT / "-" / "_" / "." / "@" / "+" / "=" ), but not "." or ".."
    key     = 1*128 ( ALPHA / DIGIT / "-" / "_" / "." ), and not containing ".passgeni-"

* ``#KEY`` names the field of the secret that holds the password; when it is
  omitted the key is ``password`` (so ``vault://secret/app/db`` means
  ``vault://secret/app/db#password``).
* Nothing is percent-decoded; no user, port, query, whitespace or control
  character is allowed. Schemes are lower case. Anything else is refused with
  :class:`InvalidStoreURI` naming what is wrong.
* Prefix form, for listing and scanning only: ``vault://MOUNT[/PREFIX]``,
  ``aws-sm://[PREFIX]``, ``k8s://NAMESPACE``. A trailing ``/`` is allowed.
* Schemes added by third-party backends follow the generic part of the
  grammar (a location of printable, non-space characters without ``#``/``?``);
  the backend validates the rest.

What is stored
==============

The secret's value (one new version per write, atomically) holds, for the key::

    KEY                          the password
    KEY.passgeni-binding-key     the binding key (base64url), see passgeni_core._binding
    KEY.passgeni-cert-id         the certificate id
    KEY.passgeni-cert-url        the certificate URL

so the credential never exists without its certificate references. Beside the
value, where the store has metadata, the same references are merged in for
auditors (Vault ``custom_metadata``, AWS tags, Kubernetes annotations):
``passgeni-cert-url``, ``passgeni-cert-id``, ``passgeni-standard``,
``passgeni-expires-at`` and, for versioned stores, ``passgeni-kv-version``.
Other fields of the value and other metadata keys are kept.

The certificate's ``target`` claim is ``{system: SCHEME, path: LOCATION#KEY,
version: V}`` where ``V`` is the store version the write creates, so a scan
can tell whether the current version is the certified one.

Backends
========

Backends are found by URI scheme through the ``passgeni.stores`` entry-point
group (as fsspec finds filesystems by protocol): the entry point's name is the
scheme and its object a class implementing :class:`SecretStore` with a
``from_uri(uri, **options)`` class method. The core and the CLI never import a
backend by name; :func:`register_store` adds one at run time.

A backend may also offer ``plan_absent(uris) -> list[WritePlan | None]``
(optional, found with ``getattr``): for bulk rotation, the plans of the URIs
it can tell are absent in a few calls (Vault: one ``LIST`` per folder), the
same plans ``prepare`` would make, and ``None`` for the others, which then go
through ``prepare``. Check-and-set still guards the write: a secret created
after the listing makes the write fail (and its certificate is revoked).

Write order (nothing lost)
==========================

:func:`provision_into_store` and :func:`rotate`:

1. ``prepare``: read the current state; compute the version the write will
   create; check the store's limits that are known already. Nothing written.
2. Generate locally and certify (target = the next version). Nothing written.
3. ``check`` the limits with the real references, then ``write`` the new
   version (password, binding key and references together) with
   check-and-set against the version read in step 1. On failure the
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

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from ._binding import Credential, decode_binding_key, encode_binding_key
from ._client import AuthorityClient
from ._entropy_source import EntropySource
from ._errors import (
    InvalidRequest,
    PassgeniError,
    StoreConflict,
    StoreError,
    UnknownStoreScheme,
    one_line,
)
from ._generator import generate
from ._params import GenerationParameters
from ._presets import get_preset
from ._provision import ProvisionResult, certify
from ._standards import check_preset
from ._store_uri import _SCHEME, DEFAULT_KEY, StoreURI, parse_store_uri

__all__ = [
    "DEFAULT_KEY",
    "METADATA_KEYS",
    "REVOKE_REASON_NOT_STORED",
    "REVOKE_REASON_ROTATED",
    "STORE_ENTRY_POINT_GROUP",
    "CertificateRefs",
    "SecretStore",
    "StoreResult",
    "StoreURI",
    "StoredCredential",
    "WritePlan",
    "available_schemes",
    "credential_fields",
    "open_store",
    "parse_credential_fields",
    "parse_store_uri",
    "plan_absent",
    "provision_into_store",
    "register_store",
    "rotate",
    "store_certified",
    "store_class",
]

STORE_ENTRY_POINT_GROUP = "passgeni.stores"
REVOKE_REASON_NOT_STORED = "not stored"
REVOKE_REASON_ROTATED = "rotated"

#: Metadata (Vault custom_metadata, AWS tags) names, in write order.
META_CERT_URL = "passgeni-cert-url"
META_CERT_ID = "passgeni-cert-id"
META_STANDARD = "passgeni-standard"
META_EXPIRES_AT = "passgeni-expires-at"
META_VERSION = "passgeni-kv-version"
METADATA_KEYS = (META_CERT_URL, META_CERT_ID, META_STANDARD, META_EXPIRES_AT, META_VERSION)

#: Companion fields of the value, after ``KEY``.
FIELD_BINDING_KEY = ".passgeni-binding-key"
FIELD_CERT_ID = ".passgeni-cert-id"
FIELD_CERT_URL = ".passgeni-cert-url"

# --- records ----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@dataclass(frozen=True, kw_only=True)
class CertificateRefs:
    """Where a stored credential's certificate is (public facts only)."""

    cert_id: str
    cert_url: str
    standard: str | None = None
    expires_at: datetime | None = None
    #: The store version these references were written for (``passgeni-kv-version``).
    version: str | None = None

    def to_metadata(self) -> dict[str, str]:
        """The metadata map (Vault custom_metadata, AWS tags); empty values are left out."""
        out = {META_CERT_URL: self.cert_url, META_CERT_ID: self.cert_id}
        if self.standard:
            out[META_STANDARD] = self.standard
        expires = _iso(self.expires_at)
        if expires:
            out[META_EXPIRES_AT] = expires
        if self.version is not None:
            out[META_VERSION] = self.version
        return out

    @classmethod
    def from_metadata(
        cls, data: Mapping[str, str], *, aliases: Mapping[str, str] | None = None
    ) -> CertificateRefs | None:
        """Parse a metadata map; ``None`` when it names no certificate.

        ``aliases`` maps a foreign spelling to ours (e.g. Kubernetes
        ``passgeni.ai/cert-url`` -> ``passgeni-cert-url``, legacy
        ``passgenni-cert-url``); the canonical spelling wins when both exist.
        """
        merged: dict[str, str] = {}
        for name, ours in (aliases or {}).items():
            if isinstance(data.get(name), str):
                merged.setdefault(ours, data[name])
        for name in METADATA_KEYS:
            if isinstance(data.get(name), str):
                merged[name] = data[name]
        cert_id, cert_url = merged.get(META_CERT_ID), merged.get(META_CERT_URL)
        if not cert_id or not cert_url:
            return None
        return cls(
            cert_id=cert_id,
            cert_url=cert_url,
            standard=merged.get(META_STANDARD) or None,
            expires_at=_parse_iso(merged.get(META_EXPIRES_AT)),
            version=merged.get(META_VERSION) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "standard": self.standard,
            "expires_at": _iso(self.expires_at),
            "version": self.version,
        }

    def same_certificate(self, other: CertificateRefs | None) -> bool:
        return other is not None and (other.cert_id, other.cert_url) == (
            self.cert_id,
            self.cert_url,
        )


def credential_fields(key: str, credential: Credential, refs: CertificateRefs) -> dict[str, str]:
    """The value fields for ``key``: password, binding key and certificate references."""
    return {
        key: credential.password,
        key + FIELD_BINDING_KEY: encode_binding_key(credential.binding_key),
        key + FIELD_CERT_ID: refs.cert_id,
        key + FIELD_CERT_URL: refs.cert_url,
    }


def credential_field_names(key: str) -> tuple[str, ...]:
    return (key, key + FIELD_BINDING_KEY, key + FIELD_CERT_ID, key + FIELD_CERT_URL)


def certified_keys(data: Mapping[str, Any]) -> list[str]:
    """Keys of ``data`` that have certificate references (sorted)."""
    return sorted(
        name[: -len(FIELD_CERT_ID)]
        for name in data
        if isinstance(name, str) and name.endswith(FIELD_CERT_ID) and len(name) > len(FIELD_CERT_ID)
    )


def parse_credential_fields(
    key: str, data: Mapping[str, Any]
) -> tuple[str | None, bytes | None, CertificateRefs | None]:
    """``(password, binding_key, refs)`` of ``key`` in a stored value (each may be None).

    A malformed binding key reads as ``None`` (the scan then reports drift).
    """
    password = data.get(key)
    password = password if isinstance(password, str) else None
    binding: bytes | None = None
    raw_binding = data.get(key + FIELD_BINDING_KEY)
    if isinstance(raw_binding, str):
        try:
            binding = decode_binding_key(raw_binding)
        except InvalidRequest:
            binding = None
    cert_id, cert_url = data.get(key + FIELD_CERT_ID), data.get(key + FIELD_CERT_URL)
    refs = (
        CertificateRefs(cert_id=cert_id, cert_url=cert_url)
        if isinstance(cert_id, str) and cert_id and isinstance(cert_url, str) and cert_url
        else None
    )
    return password, binding, refs


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class StoredCredential:
    """What a store holds at one URI, as read. ``repr`` never shows the secrets."""

    uri: StoreURI
    #: The store's current version ("3" in Vault, a VersionId in AWS; None if unversioned).
    version: str | None = None
    password: str | None = None
    binding_key: bytes | None = None
    #: References inside the current value (authoritative: versioned with the password).
    refs: CertificateRefs | None = None
    #: References in the store's metadata/tags/annotations (may lag behind ``refs``).
    metadata_refs: CertificateRefs | None = None

    @property
    def credential(self) -> Credential | None:
        if self.password is None or self.binding_key is None:
            return None
        return Credential(password=self.password, binding_key=self.binding_key)

    def __repr__(self) -> str:
        return (
            f"StoredCredential(uri={str(self.uri)!r}, version={self.version!r}, "
            f"password={'***' if self.password is not None else None}, "
            f"cert_id={self.refs.cert_id if self.refs else None!r})"
        )

    __str__ = __repr__


def stored_credentials(
    uri: StoreURI,
    data: Mapping[str, Any] | None,
    *,
    version: str | None,
    metadata_refs: CertificateRefs | None,
    only_key: str | None = None,
) -> list[StoredCredential]:
    """Split one secret's value into credentials (helper for backends' ``read``/``list``).

    ``uri`` names the secret (its key is the default key). With ``only_key``
    just that key is returned (absent: a record with no password); otherwise
    every certified key, or the URI's key when none is certified. The metadata
    references go to the key whose certificate they name, else (they lag or
    the value was replaced) to every key.
    """
    values = dict(data or {})
    keys = [only_key] if only_key else (certified_keys(values) or [uri.key])
    parsed = {k: parse_credential_fields(k, values) for k in keys}
    owner = None
    if metadata_refs is not None:
        for k, (_, _, refs) in parsed.items():
            if refs is not None and refs.cert_id == metadata_refs.cert_id:
                owner = k
    out = []
    for k, (password, binding, refs) in parsed.items():
        meta = metadata_refs if owner in (None, k) else None
        out.append(
            StoredCredential(
                uri=uri.with_location(uri.location, k),
                version=version,
                password=password,
                binding_key=binding,
                refs=refs,
                metadata_refs=meta,
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class WritePlan:
    """The result of :meth:`SecretStore.prepare`: what the next write will do.

    Holds no secret: ``current`` hides its password in ``repr``, and the
    backend re-reads other fields under check-and-set at write time.
    """

    uri: StoreURI
    #: The credential at the URI now (None: absent).
    current: StoredCredential | None
    #: The version the write will create; goes into the certificate's target.
    next_version: str | None
    #: Backend-private check-and-set token (the version read), "" when the secret is absent.
    precondition: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class SecretStore(Protocol):
    """What a backend implements (Vault, AWS Secrets Manager, Kubernetes, third parties).

    One instance is one connection (configured from its ecosystem's usual
    environment); URIs are passed per call. Every method raises
    :class:`StoreError` subclasses only (``StoreUnavailable`` for connection
    failures and timeouts, ``StoreConflict`` for a failed check-and-set,
    ``StoreLimitExceeded`` for a store limit), with messages that never
    contain a secret value or a credential of the connection.
    """

    #: The ``target.system`` value for this backend (its URI scheme).
    system: str

    def prepare(self, uri: StoreURI) -> WritePlan:
        """Read the current state and plan the next write; check known limits. Writes nothing."""
        ...

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        """Raise StoreLimitExceeded if ``refs`` cannot be stored. Writes nothing."""
        ...

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        """Store the credential and refs as one new version, exactly ``plan.next_version``.

        Check-and-set against ``plan.precondition``: StoreConflict if the secret
        changed since ``prepare``. Other fields of the value are kept. Returns
        the version written.
        """
        ...

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        """Merge the refs into the store's metadata, never removing other keys."""
        ...

    def read(self, uri: StoreURI) -> StoredCredential | None:
        """The credential at ``uri`` (None if the secret or the key does not exist)."""
        ...

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        """Every secret under ``prefix``: one entry per certified key, else one for the URI key."""
        ...

    def close(self) -> None: ...


def plan_absent(store: SecretStore, uris: list[StoreURI]) -> list[WritePlan | None]:
    """The backend's optional ``plan_absent`` (see "Backends"); ``None`` where unknown.

    Any failure of the shortcut just means every URI goes through ``prepare``.
    """
    method = getattr(store, "plan_absent", None)
    if not uris or not callable(method):
        return [None] * len(uris)
    try:
        plans = list(method(uris))
    except Exception:
        return [None] * len(uris)
    if len(plans) != len(uris) or not all(
        p is None or (isinstance(p, WritePlan) and p.uri == u and p.current is None)
        for p, u in zip(plans, uris, strict=True)
    ):
        return [None] * len(uris)
    return plans


# --- discovery -----------------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registered: dict[str, Callable[..., SecretStore]] = {}


def register_store(scheme: str, factory: Callable[..., SecretStore] | None) -> None:
    """Register (or with ``None`` unregister) a backend for ``scheme`` in this process.

    ``factory`` is called as ``factory(uri, **options)`` (a class's ``from_uri``).
    Run-time registrations take precedence over entry points.
    """
    if not _SCHEME.fullmatch(scheme):
        raise InvalidRequest(f"{scheme[:40]!r} is not a lower-case URI scheme")
    with _registry_lock:
        if factory is None:
            _registered.pop(scheme, None)
        else:
            _registered[scheme] = factory


def available_schemes() -> list[str]:
    """Every scheme a backend is installed or registered for."""
    try:
        names = {ep.name for ep in entry_points(group=STORE_ENTRY_POINT_GROUP)}
    except Exception:  # a corrupt installed distribution must not hide the others
        names = set()
    with _registry_lock:
        names.update(_registered)
    return sorted(names)


def store_class(scheme: str) -> Callable[..., SecretStore]:
    """The factory for ``scheme``: ``factory(uri, **options) -> SecretStore``.

    Raises:
        UnknownStoreScheme: no backend is installed for the scheme.
        StoreError: the backend is installed but fails to import (a missing extra).
    """
    with _registry_lock:
        if scheme in _registered:
            return _registered[scheme]
    chosen = [ep for ep in entry_points(group=STORE_ENTRY_POINT_GROUP) if ep.name == scheme]
    if not chosen:
        known = ", ".join(available_schemes()) or "none"
        raise UnknownStoreScheme(
            f"no secret store backend is installed for {scheme!r}:// (installed: {known}); "
            "install passgeni[vault], passgeni[aws] or passgeni[k8s], or a third-party backend"
        )
    ep = chosen[0]
    try:
        obj = ep.load()
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise StoreError(
            f"the {scheme}:// store backend ({ep.value}) failed to load: "
            f"{type(exc).__name__}: {detail}; is its extra installed (passgeni[vault], "
            "passgeni[aws], passgeni[k8s])?"
        ) from None
    factory = getattr(obj, "from_uri", obj)
    if not callable(factory):
        raise StoreError(f"the {scheme}:// store backend ({ep.value}) is not callable")
    checked: Callable[..., SecretStore] = factory
    return checked


def open_store(uri: str | StoreURI, **options: Any) -> SecretStore:
    """A connected store for ``uri``'s scheme (prefix URIs allowed).

    ``options`` go to the backend (e.g. ``client=`` an existing SDK client,
    ``environ=`` a mapping to read configuration from instead of ``os.environ``).

    Raises:
        InvalidStoreURI / UnknownStoreScheme: a malformed URI or no backend for it.
        StoreError: the backend failed to load or to configure itself.
    """
    parsed = parse_store_uri(uri, allow_prefix=True)
    factory = store_class(parsed.scheme)
    store = factory(parsed, **options)
    return store


# --- orchestration --------------------------------------------------------------------------------

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


def _landed(store: SecretStore, uri: StoreURI, refs: CertificateRefs) -> bool | None:
    """After a failed write: did it land anyway? None when the store cannot tell."""
    try:
        current = store.read(uri)
    except Exception:
        return None
    return current is not None and refs.same_certificate(current.refs)


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
    from ._scan import assess  # _scan imports this module, so import it here

    target_uri = parse_store_uri(uri)
    preset_id = get_preset(preset).id
    hook = before_write or (lambda step: None)
    plan = store.prepare(target_uri)
    current = plan.current
    previous_cert: str | None = None
    outcome: Outcome = "created"
    if current is not None and current.password is not None:
        # The value decides; lagging metadata is completed below, not a reason to refuse.
        entry = assess(client, store.system, replace(current, metadata_refs=None), now=now)
        if not rotate:
            if entry.status in ("valid", "expiring") and entry.standard == preset_id:
                return _complete_metadata(store, current, entry.refs, hook)
            if entry.status == "revoked" and entry.revocation_reason == REVOKE_REASON_NOT_STORED:
                outcome = "replaced"
            else:
                why = (
                    f"certified for {entry.standard}, not {preset_id}"
                    if entry.status in ("valid", "expiring")
                    else f"its status is {entry.status}"
                    + (f": {entry.detail}" if entry.detail else "")
                )
                raise StoreConflict(
                    f"{target_uri} already holds a credential ({why}); replacing it is a "
                    "rotation: use rotate (passgeni provision --rotate)"
                )
        else:
            outcome = "rotated"
            if current.refs is not None and entry.status != "revoked":
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
    generated = generate(params, entropy_source=entropy_source)
    credential = Credential.create(generated.password)
    result = certify(
        client,
        generated,
        credential,
        preset=preset_id,
        target=target_uri.target(store.system, plan.next_version),
        label=label,
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

    ``result`` must have been certified with ``plan.uri.target(store.system,
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

    # 3. the value: password, binding key and references in one version.
    try:
        hook("write")
        store.check(plan, refs)
        version = store.write(plan, credential, refs)
    except Exception as exc:
        landed = _landed(store, target_uri, refs)
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
