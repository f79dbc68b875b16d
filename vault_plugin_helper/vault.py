"""HashiCorp Vault / OpenBao KV version 2 backend for ``vault://MOUNT/PATH#KEY``.

Connection, as the ``vault`` CLI and hvac users expect (read when the store
is opened, from ``os.environ`` or the ``environ`` option, by
:func:`vault_config_from_environ`, which lists the variables; proxy variables and
``REQUESTS_CA_BUNDLE`` from ``os.environ``, once): ``VAULT_ADDR``,
``VAULT_NAMESPACE``, the TLS variables, and ``VAULT_AUTH_METHOD`` = ``token``
(``VAULT_TOKEN`` or ``~/.vault-token``), ``approle``, ``kubernetes`` or ``jwt``
with their role and secret variables. For any other auth method, log in with
hvac and pass the authenticated client: ``open_store(uri, client=hvac_client)``.

Writes (see ``passgeni_core.workflows.provision_into_store`` for the order):

* the proof record (``proof_location=sibling``, the default): the seed or binding key
  and the references, in the sibling secret ``MOUNT/passgeni-proof/PATH`` (same mount;
  a policy on ``MOUNT/data/passgeni-proof/*`` protects every proof), ``POST`` with
  ``options.cas`` = its latest version, written before the value;
* the value (the credential's key only; inline: with its proof and references): ``POST /v1/MOUNT/data/PATH`` with ``options.cas`` = the version
  read (0 when absent), other fields of the current version kept;
* the metadata: ``PATCH /v1/MOUNT/metadata/PATH`` with
  ``Content-Type: application/merge-patch+json`` (only our keys are sent, so
  other teams' keys stay); when the server has no PATCH (405) or the token
  lacks the ``patch`` capability (403), read-merge-write with ``POST``.

Limits enforced before anything is written: ``custom_metadata`` at most 64
keys, keys at most 128 bytes, values 1-512 bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from passgeni_core import Credential, InvalidStoreURI, StoreError, StoreNotFound
from passgeni_core.stores import (
    CertificateRefs,
    StoredCredential,
    StoreScope,
    StoreURI,
    WritePlan,
    check_segments,
    clean_value_fields,
    merge_credential_fields,
    needs_proof,
    proof_location_option,
    stored_credentials,
)

from ._common import check_metadata_limits
from ._kv2 import MISSING, KvV2, Where, custom_metadata
from ._kv2_listing import READERS, read_each, secrets_under
from ._vault_client import DEFAULT_ADDR, DEFAULT_TIMEOUT, client_from_environ, vault_client
from ._vault_config import VaultConfig, vault_config_from_environ
from ._vault_proof import PROOF_FOLDER, VaultProofRecords

if TYPE_CHECKING:
    # hvac loads when a store is opened, not with this module: the Terraform
    # program loads the class to validate a destination's grammar.
    import hvac

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_TIMEOUT",
    "MAX_METADATA_KEYS",
    "PROOF_FOLDER",
    "VaultConfig",
    "VaultLocations",
    "VaultStore",
    "client_from_environ",
    "vault_client",
    "vault_config_from_environ",
]

MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_BYTES = 128
MAX_METADATA_VALUE_BYTES = 512


def _check_custom_metadata(merged: dict[str, str], ours: dict[str, str], *, where: str) -> None:
    """KV v2's ``custom_metadata`` limits, for ``merged`` (existing + ours)."""
    check_metadata_limits(
        merged,
        ours,
        where=where,
        max_keys=MAX_METADATA_KEYS,
        max_key_bytes=MAX_METADATA_KEY_BYTES,
        min_value_bytes=1,
        max_value_bytes=MAX_METADATA_VALUE_BYTES,
        what="custom_metadata",
    )


class VaultLocations:
    """``vault://MOUNT/PATH``: a KV v2 mount and a path inside it.

    ``MOUNT`` and every ``PATH`` segment hold letters, digits and ``- _ . @ + =``
    (and are not ``.`` or ``..``); the prefix form is ``vault://MOUNT[/PREFIX]``.
    """

    form = "vault://MOUNT/PATH#KEY"
    incomplete = "expected MOUNT/PATH (a KV v2 mount and a path)"

    def check(self, location: str) -> bool:
        segments = location.split("/") if location else []
        if not segments:
            raise ValueError("missing MOUNT")
        check_segments(segments, "path")
        return len(segments) >= 2


class VaultStore(VaultProofRecords):
    """The ``vault://`` store (KV version 2). ``repr`` shows the address, never the token."""

    system = "vault"
    locations = VaultLocations()
    settings = ("proof_location",)

    def __init__(
        self,
        *,
        client: hvac.Client | None = None,
        environ: Mapping[str, str] | None = None,
        readers: int = READERS,
        proof_location: str | None = None,
        **client_options: Any,
    ) -> None:
        #: ``sibling`` (default): proofs in ``MOUNT/passgeni-proof/PATH``; ``inline``: in the value.
        self.proof_location = proof_location_option(proof_location, where="vault://")
        #: Makes another client like ours (same address, TLS, namespace, token) for the
        #: readers of a listing; None for a client given: it is the only one we have.
        self._sibling: Callable[[], hvac.Client] | None = None
        if client is None:
            config = vault_config_from_environ(environ)
            client = vault_client(config, **client_options)
            same = {**client_options, "token": client.token}
            self._sibling = lambda: vault_client(config, **same)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self.readers = max(1, readers)
        self._kv = KvV2(self._client)
        self.addr = self._kv.addr
        self.namespace = self._kv.namespace
        #: Which Vault: recorded in every certificate's target, checked by the judge.
        self.scope = StoreScope(address=self.addr, namespace=self.namespace)

    @classmethod
    def from_uri(cls, uri: StoreURI, **options: Any) -> VaultStore:
        if uri.scheme != "vault":
            raise InvalidStoreURI(f"{uri} is not a vault:// URI")
        return cls(**options)

    def __repr__(self) -> str:
        namespace = f", namespace={self.namespace!r}" if self.namespace else ""
        return f"VaultStore(addr={self.addr!r}{namespace})"

    def close(self) -> None:
        if self._owns_client:
            adapter = self._client.adapter
            close = getattr(adapter, "close", None)
            if callable(close):
                close()

    def _state(
        self, uri: StoreURI, kv: KvV2 | None = None
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        kv = kv or self._kv
        # One round trip in the usual case (a scan or a plan reads thousands of secrets);
        # the metadata path only when the data path's answer cannot say.
        answered = kv.read_current(uri)
        if answered is not None:
            return answered
        meta = kv.read_metadata(uri)
        if meta is None:
            return 0, None, {}
        version = meta.get("current_version")
        current = version if isinstance(version, int) and version > 0 else 0
        data = kv.read_data(uri, current) if current else None
        return current, data, custom_metadata(meta)

    def _records(
        self, uri: StoreURI, only_key: str | None, kv: KvV2 | None = None
    ) -> tuple[int, list[StoredCredential], dict[str, str]]:
        at = self._secret_at(uri)
        version, data, custom = self._state(uri, kv)
        if version == 0 and not custom:
            return 0, [], custom
        meta_refs = CertificateRefs.from_metadata(custom)
        # Read whatever layout the secret has, whichever this store writes.
        proof = (
            (kv or self._kv).read_latest(self._proof_uri(uri, at))[1]
            if needs_proof(data, only_key or uri.key, meta_refs)
            else None
        )
        records = stored_credentials(
            uri,
            data,
            version=str(version) if version else None,
            metadata_refs=meta_refs,
            only_key=only_key,
            scope=self.scope,
            proof=proof,
        )
        return version, records, custom

    # -- SecretStore ----------------------------------------------------------------------------

    def read(self, uri: StoreURI) -> StoredCredential | None:
        _, records, _ = self._records(uri, uri.key)
        record = records[0] if records else None
        return record if record is not None and record.password is not None else None

    def _check_kv2(self, location: str) -> Where:
        """``location`` at its mount; refuse a mount that is not KV version 2.

        On KV v1, ``MOUNT/data/PATH`` would silently become a secret of its own, and a
        scan would find nothing. Unknown (no permission on the mounts endpoint): assume KV v2.
        """
        at = self._kv.where(location)
        mount = at.mount
        if mount.is_kv2 is False:
            raise StoreError(
                f"vault://{location}: {mount.path}/ is not a KV version 2 mount (type "
                f"{str(mount.kind)[:20]!r}, version {str(mount.version)[:5]!r}); PassGeni needs "
                "KV v2 for versions and metadata"
            )
        return at

    def prepare(self, uri: StoreURI) -> WritePlan:
        """The plan of the next write; refused when the token may not make it.

        The token's capabilities on the value and metadata paths are checked here
        (``sys/capabilities-self``), so a read-only token fails before a certificate
        is asked for, not after (issue #18).
        """
        at = self._check_kv2(uri.location)
        proof_exists = self._proof_exists(uri, at)
        version, records, custom = self._records(uri, uri.key)
        self._check_writable([uri], exists=version > 0 or bool(custom), proof_exists=proof_exists)
        return self._plan(uri, version, records, custom)

    def plan_absent(self, uris: Sequence[StoreURI]) -> list[WritePlan | None]:
        """For bulk rotation: the plans of the URIs whose secret does not exist.

        One ``LIST`` of the KV v2 metadata per folder holding two or more of
        the URIs (for a single one a ``prepare`` costs the same); a name not
        listed has no metadata, so no version: its plan is exactly what
        ``prepare`` would return (``cas`` 0, which makes the write fail if the
        secret appears meanwhile). ``None`` for every other URI (listed, or
        the folder could not be listed, e.g. no ``list`` capability): those
        need ``prepare``.
        """
        out: list[WritePlan | None] = [None] * len(uris)
        folders: dict[str, list[int]] = {}
        for i, uri in enumerate(uris):
            parts = uri.parts
            if uri.scheme == "vault" and not uri.prefix and len(parts) >= 2:
                folders.setdefault("/".join(parts[:-1]), []).append(i)
        for folder, indexes in folders.items():
            if len(indexes) < 2:
                continue
            try:
                at = self._check_kv2(folder)
                if not at.path:
                    continue  # the mount itself: secrets right under it are planned one by one
                data = self._kv.list_folder(at, allow=(400, 403, 405))
            except StoreError:
                continue
            if isinstance(data, int):
                continue
            if data is MISSING:
                names: set[str] = set()
            else:
                keys = (data.get("data") or {}).get("keys") if isinstance(data, dict) else None
                if not isinstance(keys, list):
                    continue
                names = {str(k) for k in keys}
            absent = [i for i in indexes if uris[i].parts[-1] not in names]
            try:
                denied = self._denied([uris[i] for i in absent], exists=False)
            except StoreError:
                continue
            for i in absent:
                if uris[i] in denied:
                    continue  # prepare reports it
                try:
                    out[i] = self._plan(uris[i], 0, [], {})
                except StoreError:
                    continue  # prepare reports it
        return out

    def _plan(
        self,
        uri: StoreURI,
        version: int,
        records: list[StoredCredential],
        custom: dict[str, str],
    ) -> WritePlan:
        current = records[0] if records and records[0].password is not None else None
        placeholder = CertificateRefs(cert_id="x", cert_url="x", standard="x", version="1")
        ours = dict.fromkeys(placeholder.to_metadata(), "x")
        ours["passgeni-expires-at"] = "x"
        _check_custom_metadata({**custom, **ours}, ours, where=f"vault://{uri.location}")
        return WritePlan(
            uri=uri,
            current=current,
            next_version=str(version + 1),
            precondition=str(version),
            proof=self._proof_shown(uri),
        )

    def check(self, plan: WritePlan, refs: CertificateRefs) -> None:
        ours = refs.to_metadata()
        _check_custom_metadata(ours, ours, where=f"vault://{plan.uri.location}")

    def write(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> str:
        uri = plan.uri
        at = self._secret_at(uri)
        cas = int(plan.precondition or "0")
        existing = self._kv.read_data(uri, cas) if cas else None
        merged = (
            clean_value_fields(existing, uri.key, credential)
            if plan.proof is not None
            else merge_credential_fields(existing, uri.key, credential, refs)
        )
        data = self._kv.call(
            "POST",
            f"/v1/{at.url_mount}/data/{at.url_path}",
            f"write {at.shown}",
            body={"options": {"cas": cas}, "data": merged},
        )
        if data is MISSING:
            raise StoreError(f"write {at.shown}: no KV version 2 mount {at.mount.path!r}")
        version = (data.get("data") or {}).get("version") if isinstance(data, dict) else None
        if not isinstance(version, int):
            raise StoreError(f"write {at.shown}: Vault's answer has no version")
        return str(version)

    def write_metadata(self, uri: StoreURI, refs: CertificateRefs) -> None:
        at = self._secret_at(uri)
        shown = at.shown
        ours = refs.to_metadata()
        url = f"/v1/{at.url_mount}/metadata/{at.url_path}"
        result = self._kv.call(
            "PATCH",
            url,
            f"update metadata of {shown}",
            body={"custom_metadata": ours},
            headers={"Content-Type": "application/merge-patch+json"},
            allow=(403, 405),
        )
        if not isinstance(result, int) and result is not MISSING:
            return
        # No PATCH (older Vault), or no "patch" capability: read, merge, write back.
        meta = self._kv.read_metadata(uri)
        merged = {**custom_metadata(meta), **ours}
        _check_custom_metadata(merged, ours, where=f"vault://{shown}")
        self._kv.call("POST", url, f"update metadata of {shown}", body={"custom_metadata": merged})

    def _secret_at(self, uri: StoreURI) -> Where:
        at = self._check_kv2(uri.location)
        if not at.path:
            raise InvalidStoreURI(
                f"vault://{uri.location} is the mount {at.mount.path}/ itself, not a secret in "
                "it: expected vault://MOUNT/PATH#KEY"
            )
        return at

    def list(self, prefix: StoreURI) -> Iterator[StoredCredential]:
        """Every credential under ``prefix``, walking the KV v2 metadata folders.

        Raises StoreNotFound when the prefix names nothing: no secrets engine mounted
        there, or neither a secret nor a folder at the path (a typo); a mount that is
        not KV v2 is a StoreError. An existing, empty mount lists nothing.
        """
        only_key = prefix.key if prefix.explicit_key else None
        at = self._check_kv2(prefix.location)
        if at.path and prefix.explicit_key:
            # A single secret's key.
            _, records, _ = self._records(prefix, only_key)
            if not records:
                raise StoreNotFound(f"{prefix}: no such secret in Vault at {self.addr}")
            yield from records
            return
        found = False
        uris = list(secrets_under(self._kv, prefix, at, first=True, hidden=PROOF_FOLDER))
        for records in read_each(
            uris,
            lambda uri, kv: self._records(uri, only_key, kv)[1],
            self._sibling,
            readers=self.readers,
            alone=self._kv,
        ):
            found = found or bool(records)
            yield from records
        if not found and at.path and not self._exists(prefix, at):
            raise StoreNotFound(
                f"vault://{prefix.location}: no secret and no folder at this path in the mount "
                f"{at.mount.path}/ of Vault at {self.addr}; is the path mistyped?"
            )

    def _exists(self, prefix: StoreURI, at: Where) -> bool:
        """Whether anything (a secret, even without credentials, or a folder) is at ``at``."""
        if self._kv.read_metadata(prefix.with_location(prefix.location)) is not None:
            return True
        return self._kv.list_folder(at) is not MISSING
