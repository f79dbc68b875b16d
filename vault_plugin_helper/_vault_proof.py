"""Vault's proof records and write permissions (a part of :class:`VaultStore`).

The proof record of ``vault://MOUNT/PATH`` is the KV v2 secret
``MOUNT/passgeni-proof/PATH`` (same mount): one policy rule,
``path "MOUNT/data/passgeni-proof/*"``, grants or denies every proof apart from
the values workloads read (``MOUNT/data/app/*`` never covers it). It is written
before the value, with check-and-set against its latest version, and the token's
capabilities on it are checked with the value's before anything is certified.
"""

from __future__ import annotations

from collections.abc import Sequence

from passgeni_core import Credential, InvalidStoreURI, StoreError
from passgeni_core.stores import CertificateRefs, ProofEntry, StoreURI, WritePlan, merge_proof

from ._kv2 import MISSING, KvV2, Where

#: The folder of every proof record, at the root of the secret's mount.
PROOF_FOLDER = "passgeni-proof"


class VaultProofRecords:
    """Proof records and the capability check of :class:`~vault_plugin_helper.vault.VaultStore`."""

    _kv: KvV2
    proof_location: str

    def _secret_at(self, uri: StoreURI) -> Where:
        raise NotImplementedError

    def _proof_exists(self, uri: StoreURI, at: Where) -> bool | None:
        """For ``prepare``: whether the proof record exists (None: inline, no record).

        A location inside the proof folder is refused: it holds proofs, not credentials.
        """
        if at.path == PROOF_FOLDER or at.path.startswith(PROOF_FOLDER + "/"):
            raise InvalidStoreURI(
                f"{uri}: {at.mount.path}/{PROOF_FOLDER}/ holds PassGeni's proof records, "
                "not credentials"
            )
        if self.proof_location != "sibling":
            return None
        version = self._kv.read_latest(self._proof_uri(uri, at), denied_ok=True)[0]
        return None if version < 0 else version > 0

    def _proof_shown(self, uri: StoreURI) -> str | None:
        """``WritePlan.proof``: where the proof record goes (None: inline)."""
        if self.proof_location != "sibling":
            return None
        return f"vault://{self._proof_uri(uri, self._secret_at(uri)).location}"

    def _proof_uri(self, uri: StoreURI, at: Where) -> StoreURI:
        """The proof record of ``uri``'s secret: ``MOUNT/passgeni-proof/PATH``."""
        return uri.with_location(f"{at.mount.path}/{PROOF_FOLDER}/{at.path}", uri.key)

    def _api_paths(self, uri: StoreURI) -> tuple[str, str, str | None]:
        at = self._secret_at(uri)
        mount = at.mount.path
        proof = (
            f"{mount}/data/{PROOF_FOLDER}/{at.path}" if self.proof_location == "sibling" else None
        )
        return f"{mount}/data/{at.path}", f"{mount}/metadata/{at.path}", proof

    def _check_writable(
        self, uris: Sequence[StoreURI], *, exists: bool, proof_exists: bool | None = None
    ) -> None:
        """Raise StoreError naming what the token lacks to write the first of ``uris`` denied."""
        for uri, missing in self._denied(uris, exists=exists, proof_exists=proof_exists).items():
            raise StoreError(
                f"{uri}: the Vault token may not write this secret (it lacks "
                f"{'; '.join(missing)}); nothing was certified or written: grant the "
                "capabilities or use another token"
            )

    def _denied(
        self, uris: Sequence[StoreURI], *, exists: bool, proof_exists: bool | None = None
    ) -> dict[StoreURI, list[str]]:
        """What the token lacks per URI (one ``sys/capabilities-self`` call for all)."""
        found = self._kv.denied(
            [self._api_paths(u) for u in uris], exists=exists, proof_exists=proof_exists
        )
        return {uris[i]: missing for i, missing in found.items()}

    def write_proof(self, plan: WritePlan, credential: Credential, refs: CertificateRefs) -> None:
        """The proof record's entry for ``plan.next_version``, before the value is written.

        Check-and-set against the record's latest version; the entry of the credential
        stored now is kept (see ``passgeni_core.stores``' proof records).
        """
        uri = plan.uri
        proof_uri = self._proof_uri(uri, self._secret_at(uri))
        at = self._kv.where(proof_uri.location)
        version, existing = self._kv.read_latest(proof_uri)
        entry = ProofEntry.of(credential, refs.cert_id, refs.cert_url, plan.next_version)
        keep = plan.current.refs.cert_id if plan.current and plan.current.refs else None
        merged = merge_proof(existing, uri.key, entry, keep_cert=keep)
        data = self._kv.call(
            "POST",
            f"/v1/{at.url_mount}/data/{at.url_path}",
            f"write the proof record {at.shown}",
            body={"options": {"cas": version}, "data": merged},
        )
        if data is MISSING:
            raise StoreError(f"write {at.shown}: no KV version 2 mount {at.mount.path!r}")
