"""Proof records: a credential's secret proof material, kept beside the value workloads read.

By default a backend stores the value a workload consumes (``envFrom``, a volume, a
Vault Agent template, External Secrets) with the credential's own keys only, and
the generation seed (or, for older certificates, the binding key) in a **proof
record**: a sibling secret a separate policy protects (Vault: ``MOUNT/passgeni-proof/PATH``,
AWS: ``passgeni-proof/NAME``, Kubernetes: ``NAME-passgeni-proof``; see docs/stores.md).

The proof record is a string map; for each key it holds one field::

    KEY.passgeni-proof   JSON list of at most two entries, newest first:
                         {"cert_id", "cert_url", "version", "seed" | "binding_key", "match"}

``version`` is the store version the entry was written for (``null`` for an
unversioned store), ``match`` an HMAC of the password under the entry's own
seed or binding key, so a reader picks the entry that belongs to the value it
read without trusting the order of writes (else the entry of the certificate the
metadata names: a value changed by hand since; see :func:`pick_proof`). The proof is written **before** the
value, keeping the entry of the credential stored now: a failure after the
proof write leaves the current credential's entry in place (and an orphan the
next write drops), a failure after the value write leaves both. Nothing is lost
at any step, and a re-run completes.

Credentials stored before (``KEY.passgeni-seed`` / ``-binding-key`` / ``-cert-id``
/ ``-cert-url`` inside the value, the *inline* layout) are read as before; the
next write of the key drops those fields from the value (migration).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidRequest
from ..crypto import (
    Credential,
    b64url_encode,
    decode_binding_key,
    decode_seed,
    encode_binding_key,
    encode_seed,
)

#: The field of a proof record holding ``KEY``'s entries: ``KEY.passgeni-proof``.
FIELD_PROOF = ".passgeni-proof"
#: Where the proof goes: a sibling secret (the default) or inside the value (opt-out).
PROOF_SIBLING = "sibling"
PROOF_INLINE = "inline"
PROOF_LOCATIONS = (PROOF_SIBLING, PROOF_INLINE)
#: Entries kept per key: the one just written and the one of the credential stored now.
MAX_PROOF_ENTRIES = 2

_MATCH_LABEL = b"passgeni-proof-match-v1\x00"


def proof_location_option(value: object, *, where: str) -> str:
    """A backend's ``proof_location`` option checked: ``sibling`` (default) or ``inline``."""
    chosen = PROOF_SIBLING if value is None or value == "" else value
    if chosen not in PROOF_LOCATIONS:
        raise InvalidRequest(
            f"{where}: proof_location must be 'sibling' or 'inline', not {str(value)[:40]!r}"
        )
    return str(chosen)


def _match(secret: bytes, password: str) -> str:
    digest = hmac.new(secret, _MATCH_LABEL + password.encode("utf-8"), hashlib.sha256).digest()
    return b64url_encode(digest[:16])


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class ProofEntry:
    """One credential's proof: which certificate and version, and its secret material.

    ``repr`` names the certificate and version only, never the material.
    """

    cert_id: str
    cert_url: str
    version: str | None
    seed: bytes | None = None
    binding_key: bytes | None = None
    match: str = ""

    @classmethod
    def of(
        cls, credential: Credential, cert_id: str, cert_url: str, version: str | None
    ) -> ProofEntry:
        secret = credential.seed if credential.seed is not None else credential.binding_key
        return cls(
            cert_id=cert_id,
            cert_url=cert_url,
            version=version,
            seed=credential.seed,
            binding_key=None if credential.seed is not None else credential.binding_key,
            match=_match(secret, credential.password) if secret is not None else "",
        )

    def matches(self, password: str | None) -> bool:
        """Whether this entry belongs to ``password`` (its HMAC under the entry's material)."""
        secret = self.seed if self.seed is not None else self.binding_key
        if password is None or secret is None or not self.match:
            return False
        return hmac.compare_digest(_match(secret, password), self.match)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "version": self.version,
        }
        if self.seed is not None:
            out["seed"] = encode_seed(self.seed)
        elif self.binding_key is not None:
            out["binding_key"] = encode_binding_key(self.binding_key)
        out["match"] = self.match
        return out

    @classmethod
    def from_json(cls, raw: object) -> ProofEntry | None:
        """An entry as stored; ``None`` when malformed (the judge then finds no proof)."""
        if not isinstance(raw, dict):
            return None
        cert_id, cert_url, version = raw.get("cert_id"), raw.get("cert_url"), raw.get("version")
        if not (isinstance(cert_id, str) and cert_id and isinstance(cert_url, str) and cert_url):
            return None
        if version is not None and not isinstance(version, str):
            return None
        seed = binding = None
        try:
            if isinstance(raw.get("seed"), str):
                seed = decode_seed(raw["seed"])
            elif isinstance(raw.get("binding_key"), str):
                binding = decode_binding_key(raw["binding_key"])
        except InvalidRequest:
            return None
        match = raw.get("match")
        return cls(
            cert_id=cert_id,
            cert_url=cert_url,
            version=version,
            seed=seed,
            binding_key=binding,
            match=match if isinstance(match, str) else "",
        )

    def __repr__(self) -> str:
        return f"ProofEntry(cert_id={self.cert_id!r}, version={self.version!r})"

    __str__ = __repr__


def proof_keys(proof: Mapping[str, Any] | None) -> list[str]:
    """The keys a proof record has entries for (sorted)."""
    return sorted(
        name[: -len(FIELD_PROOF)]
        for name in proof or {}
        if isinstance(name, str) and name.endswith(FIELD_PROOF) and len(name) > len(FIELD_PROOF)
    )


def proof_entries(proof: Mapping[str, Any] | None, key: str) -> list[ProofEntry]:
    """``key``'s entries in a proof record, newest first (malformed ones left out)."""
    raw = (proof or {}).get(key + FIELD_PROOF)
    if not isinstance(raw, str):
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    return [e for e in (ProofEntry.from_json(i) for i in items) if e is not None]


def pick_proof(
    entries: Iterable[ProofEntry], password: str | None, metadata_cert: str | None
) -> ProofEntry | None:
    """The entry of the value read: the one whose HMAC matches the password; else the
    one of the certificate the metadata names (a certified value changed by hand since:
    the judge reports the drift); else ``None``.

    Never merely the newest: an entry written before a value write that failed (an
    orphan, never named by the metadata) must not be read as the proof of whatever value
    is there (a secret another writer created meanwhile would look certified, and
    revoked "not stored", and be replaced without ``--rotate``).
    """
    found = list(entries)
    for entry in found:
        if entry.matches(password):
            return entry
    if metadata_cert is not None:
        for entry in found:
            if entry.cert_id == metadata_cert:
                return entry
    return None


def merge_proof(
    existing: Mapping[str, Any] | None,
    key: str,
    entry: ProofEntry,
    *,
    keep_cert: str | None,
) -> dict[str, str]:
    """The proof record with ``entry`` first for ``key``, keeping the entry of the
    credential stored now (``keep_cert``, the certificate the value read names) so a
    failure before the value write loses nothing; other entries and keys' fields kept."""
    out = {k: v for k, v in (existing or {}).items() if isinstance(k, str) and isinstance(v, str)}
    kept = [
        e
        for e in proof_entries(existing, key)
        if keep_cert is not None and e.cert_id == keep_cert and e.cert_id != entry.cert_id
    ]
    entries = [entry, *kept][:MAX_PROOF_ENTRIES]
    out[key + FIELD_PROOF] = json.dumps([e.to_json() for e in entries], separators=(",", ":"))
    return out


def proof_fields(proof: Mapping[str, Any] | None) -> list[str]:
    """The secret strings of a proof record's fields (for error scrubbing by backends)."""
    return [v for k, v in (proof or {}).items() if isinstance(v, str) and k.endswith(FIELD_PROOF)]
