"""The evidence endpoints (status lists, signing-key history, manifest signatures,
attestations, scan submissions), as methods of :class:`~._client.AuthorityClient`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from .._errors import InvalidRequest
from ..crypto import JWKS
from ._logclient import LogReads
from ._models import _bad, decode
from ._wire import (
    ManifestBody,
    ManifestSignatureBody,
    ScanReceiptBody,
    ScanSubmissionBody,
    StatusListsBody,
)

__all__ = ["EvidenceCalls"]


class EvidenceCalls(LogReads):
    """What auditors' tools ask the authority for besides certificates. Nothing here
    is verified: pass the answers to ``passgeni_core.crypto``'s checks."""

    # -- offline revocation and evidence ------------------------------------------------

    def _path_of(self, uri: str) -> str:
        """The path of ``uri`` on this authority (it may name the public issuer URL)."""
        if not isinstance(uri, str):
            raise InvalidRequest("a status list URI must be a string")
        for base in (self.issuer, self.base_url):
            if uri.startswith(base + "/"):
                path = uri[len(base) :]
                if "?" in path or "#" in path or ".." in path:
                    break
                return path
        raise InvalidRequest(
            f"status list {uri[:120]!r} is not served by this authority ({self.issuer})"
        )

    def status_list_uris(self) -> list[str]:
        """``GET /status``: the URI of every signed status list of the authority."""
        data = self._object(self._request("GET", "/status", auth=False), "the status lists")
        return decode(data, StatusListsBody).status_lists

    def get_status_list(self, uri: str) -> str:
        """The signed status list at ``uri`` (a certificate's ``status.status_list.uri``),
        as the compact JWT (``typ: statuslist+jwt``). Not verified here: pass it to
        :func:`passgeni_core.verify_status_list`.

        Raises:
            InvalidRequest: ``uri`` is not on this authority (its issuer or base URL).
            NotFound: no such list.
        """
        text = self._request("GET", self._path_of(uri), auth=False, raw=True)
        token = str(text).strip()
        if token.count(".") != 2:
            raise _bad("the status list is not a compact JWT")
        return token

    def signing_key_history(self) -> dict[str, Any]:
        """``GET /api/signing-keys``: every key the authority ever signed with
        (``keys``, a JWK Set) and when each was created and retired (``history``)."""
        data = self._object(
            self._request("GET", "/api/signing-keys", auth=False), "the signing keys"
        )
        JWKS.from_dict(data)  # raises InvalidRequest for a malformed set
        return data

    def sign_manifest(self, manifest_sha256: str) -> str:
        """``POST /api/evidence/sign-manifest``: the authority's ES256 signature
        (a ``passgeni-manifest+jwt`` token) over an evidence manifest's SHA-256 (hex)."""
        data = self._object(
            self._request(
                "POST",
                "/api/evidence/sign-manifest",
                body=msgspec.to_builtins(ManifestBody(manifest_sha256=manifest_sha256)),
            ),
            "the manifest signature",
        )
        return decode(data, ManifestSignatureBody).token

    def submit_scan(self, body: ScanSubmissionBody) -> ScanReceiptBody:
        """``POST /api/scans``: a scan's references and statuses, for the dashboard."""
        answer = self._request("POST", "/api/scans", body=msgspec.to_builtins(body))
        return decode(self._object(answer, "the scan receipt"), ScanReceiptBody)

    def get_attestation(self, cert_id: str) -> str:
        """``GET /api/certificates/{id}/attestation``: the in-toto DSSE envelope as sent
        (check it with :func:`passgeni_core.crypto.verify_attestation`)."""
        path = f"/api/certificates/{_quote_id(cert_id)}/attestation"
        return str(self._request("GET", path, auth=False, raw=True))


def _quote_id(cert_id: str) -> str:
    if not isinstance(cert_id, str) or not cert_id.strip() or len(cert_id) > 200:
        raise InvalidRequest("a certificate id must be a non-empty string")
    # Quoted so an id can never change the path ("../", "?").
    return quote(cert_id.strip(), safe="")
