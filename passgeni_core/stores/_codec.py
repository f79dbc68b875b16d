"""The storage codec: the fields a credential is stored as, in every backend.

By default (``proof_location=sibling``) the secret's value holds the credential's
own key only (``KEY``: the password), and its proof and certificate references go
to a proof record beside it (see :mod:`._proof`), written first. With
``proof_location=inline``, and in credentials stored before proof records, the
value (one new version per write, atomically) holds, for the key::

    KEY                          the password
    KEY.passgeni-seed            the generation seed (base64url): re-derives the password
                                 and proves it was generated as certified
    KEY.passgeni-binding-key     instead of the seed, for credentials certified before
                                 generation proofs: the binding key (base64url)
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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._errors import (
    InvalidRequest,
)
from ..crypto import (
    Credential,
    decode_binding_key,
    decode_seed,
    encode_binding_key,
    encode_seed,
)
from ._proof import PROOF_INLINE, PROOF_SIBLING, pick_proof, proof_entries, proof_keys
from ._uri import StoreScope, StoreURI

#: Metadata (Vault custom_metadata, AWS tags) names, in write order.
META_CERT_URL = "passgeni-cert-url"
META_CERT_ID = "passgeni-cert-id"
META_STANDARD = "passgeni-standard"
META_EXPIRES_AT = "passgeni-expires-at"
META_VERSION = "passgeni-kv-version"
METADATA_KEYS = (META_CERT_URL, META_CERT_ID, META_STANDARD, META_EXPIRES_AT, META_VERSION)

#: Companion fields of the value, after ``KEY``.
FIELD_SEED = ".passgeni-seed"
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
    """The value fields for ``key``: password, its proof material, certificate references.

    A credential with a seed is written with its seed only (a binding key left by an
    earlier version is removed by the backends with the other companion fields).
    """
    fields = {key: credential.password}
    if credential.seed is not None:
        fields[key + FIELD_SEED] = encode_seed(credential.seed)
    elif credential.binding_key is not None:
        fields[key + FIELD_BINDING_KEY] = encode_binding_key(credential.binding_key)
    fields[key + FIELD_CERT_ID] = refs.cert_id
    fields[key + FIELD_CERT_URL] = refs.cert_url
    return fields


def merge_credential_fields(
    existing: Mapping[str, Any] | None, key: str, credential: Credential, refs: CertificateRefs
) -> dict[str, Any]:
    """``existing`` with ``key``'s fields replaced: other fields kept, and the companion
    fields of an earlier credential at ``key`` (its binding key, say) dropped."""
    names = set(credential_field_names(key))
    kept = {k: v for k, v in (existing or {}).items() if k not in names}
    return {**kept, **credential_fields(key, credential, refs)}


def clean_value_fields(
    existing: Mapping[str, Any] | None, key: str, credential: Credential
) -> dict[str, Any]:
    """``existing`` with ``key`` set to the password and no companion field of ``key``
    (the sibling layout: an earlier inline credential's seed, binding key and references
    are dropped, which migrates it). Other fields are kept."""
    names = set(credential_field_names(key))
    kept = {k: v for k, v in (existing or {}).items() if k not in names}
    return {**kept, key: credential.password}


def needs_proof(
    data: Mapping[str, Any] | None,
    key: str,
    metadata_refs: CertificateRefs | None,
) -> bool:
    """Whether a backend must read the proof record to read ``key`` of ``data``: the value
    exists and either ``key`` holds a password without inline references, or the metadata
    names a certificate no inline key has (saves a call for uncertified and inline secrets)."""
    if not data:
        return False
    if key in data and parse_credential_fields(key, data)[2] is None:
        return True
    if metadata_refs is None:
        return False
    inline = {parse_credential_fields(k, data)[2] for k in certified_keys(data)}
    return not any(r is not None and r.cert_id == metadata_refs.cert_id for r in inline)


def credential_field_names(key: str) -> tuple[str, ...]:
    return (
        key,
        key + FIELD_SEED,
        key + FIELD_BINDING_KEY,
        key + FIELD_CERT_ID,
        key + FIELD_CERT_URL,
    )


def parse_seed(key: str, data: Mapping[str, Any]) -> bytes | None:
    """The generation seed stored for ``key`` (a malformed one reads as ``None``)."""
    raw = data.get(key + FIELD_SEED)
    if not isinstance(raw, str):
        return None
    try:
        return decode_seed(raw)
    except InvalidRequest:
        return None


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
    #: The generation seed (credentials certified with a generation proof).
    seed: bytes | None = None
    #: References inside the current value (authoritative: versioned with the password).
    refs: CertificateRefs | None = None
    #: References in the store's metadata/tags/annotations (may lag behind ``refs``).
    metadata_refs: CertificateRefs | None = None
    #: Which store it was read from (Vault: address and namespace), when the backend says.
    scope: StoreScope | None = None
    #: Where its proof and references were read: ``"inline"`` (inside the value: the
    #: opt-out, or stored before proof records) or ``"sibling"``; None when there are none.
    proof_layout: str | None = None

    @property
    def credential(self) -> Credential | None:
        if self.password is None or (self.binding_key is None and self.seed is None):
            return None
        return Credential(password=self.password, binding_key=self.binding_key, seed=self.seed)

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
    scope: StoreScope | None = None,
    proof: Mapping[str, Any] | None = None,
) -> list[StoredCredential]:
    """Split one secret's value into credentials (helper for backends' ``read``/``list``).

    ``uri`` names the secret (its key is the default key). With ``only_key``
    just that key is returned (absent: a record with no password); otherwise
    every certified key, or the URI's key when none is certified. The metadata
    references go to the key whose certificate they name, else (they lag or
    the value was replaced) to every key.

    ``proof`` is the secret's proof record (sibling layout, :mod:`._proof`): a key
    without references inside the value takes its references, seed or binding key
    from the record's entry for that value. Inline fields, where present, win (the
    layout of credentials stored before proof records, and of ``proof_location=inline``).
    """
    values = dict(data or {})
    sibling_keys = [k for k in proof_keys(proof) if k in values]
    keys = (
        [only_key]
        if only_key
        else (sorted(set(certified_keys(values)) | set(sibling_keys)) or [uri.key])
    )
    parsed: dict[
        str, tuple[str | None, bytes | None, bytes | None, CertificateRefs | None, str | None]
    ] = {}
    for k in keys:
        password, binding, refs = parse_credential_fields(k, values)
        seed = parse_seed(k, values)
        layout = (
            PROOF_INLINE if refs is not None or binding is not None or seed is not None else None
        )
        if layout is None:
            named = metadata_refs.cert_id if metadata_refs is not None else None
            entry = pick_proof(proof_entries(proof, k), password, named)
            if entry is not None:
                binding, seed, layout = entry.binding_key, entry.seed, PROOF_SIBLING
                refs = CertificateRefs(cert_id=entry.cert_id, cert_url=entry.cert_url)
        parsed[k] = (password, binding, seed, refs, layout)
    owner = None
    if metadata_refs is not None:
        for k, (_, _, _, refs, _) in parsed.items():
            if refs is not None and refs.cert_id == metadata_refs.cert_id:
                owner = k
    out = []
    for k, (password, binding, seed, refs, layout) in parsed.items():
        meta = metadata_refs if owner in (None, k) else None
        out.append(
            StoredCredential(
                uri=uri.with_location(uri.location, k),
                version=version,
                password=password,
                binding_key=binding,
                seed=seed,
                refs=refs,
                metadata_refs=meta,
                scope=scope,
                proof_layout=layout,
            )
        )
    return out
