"""The transparency log's public endpoints, as methods of :class:`~._client.AuthorityClient`."""

from __future__ import annotations

from ..crypto import NoteVerifier, decode_proof
from ._transport import _Transport

__all__ = ["LogReads"]


class LogReads(_Transport):
    """Reading the authority's transparency log (docs/transparency-log.md). Nothing
    here is verified: pass the answers to ``passgeni_core.crypto``'s checks."""

    def log_key(self) -> NoteVerifier:
        """``GET /.well-known/log-key``: the log's note verifier key, as published
        (pin it: a key fetched with the checkpoint proves nothing new)."""
        text = str(self._request("GET", "/.well-known/log-key", auth=False, raw=True))
        return NoteVerifier.from_key(text.strip())

    def log_checkpoint(self) -> str:
        """``GET /log/checkpoint``: the signed note, unverified (see ``open_checkpoint``)."""
        return str(self._request("GET", "/log/checkpoint", auth=False, raw=True))

    def log_inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """``GET /log/proof/inclusion/{index}?size=N``: the hashes of the audit path."""
        return decode_proof(
            self._request(
                "GET", f"/log/proof/inclusion/{int(index)}", params={"size": int(size)}, auth=False
            )
        )

    def log_consistency_proof(self, old: int, new: int) -> list[bytes]:
        """``GET /log/proof/consistency?from=M&to=N``: the hashes of the consistency proof."""
        return decode_proof(
            self._request(
                "GET",
                "/log/proof/consistency",
                params={"from": int(old), "to": int(new)},
                auth=False,
            )
        )
