"""``GET /api/certificates/{id}/attestation``: the certificate as an in-toto
attestation (a Statement v1 in a DSSE envelope, see ``passgeni_core.crypto``'s
``attestation_statement``), signed with the authority's active ES256 key.

The authority is the only signer: ``passgeni export in-toto`` fetches this
envelope and checks it against the JWKS and the certificate before writing it.
The statement is a pure function of the stored certificate, so an envelope
stays true for as long as the certificate is valid; envelopes are kept in a
small per-process cache keyed by (certificate, key), and the certificate's
status is read from the database on every request. A revoked or expired
certificate gets no attestation (410), one that commits to nothing neither (409).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from passgeni_core import CertificateExpired, CertificateRevoked
from passgeni_core.crypto import (
    PAYLOAD_TYPE,
    attestation_statement,
    der_signature,
    dsse_envelope,
    low_s,
    pae,
    statement_payload,
    unverified_payload,
)
from passgeni_core.model import CertificateClaims

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._service import AuthorityService

__all__ = ["ATTESTATION_MEDIA_TYPE", "Attestations", "add_route"]

#: The media type of a DSSE envelope as JSON.
ATTESTATION_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
_CACHE_SIZE = 1024


class Attestations:
    """Builds, signs and caches the attestation envelopes of stored certificates."""

    def __init__(self, service: AuthorityService) -> None:
        self.service = service
        self._cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def envelope(self, cert_id: str, *, ip: str | None = None) -> dict[str, Any]:
        """The signed envelope of ``cert_id``.

        Raises:
            NotFound: no such certificate.
            CertificateRevoked / CertificateExpired: it is not valid now (410).
            NotAttestable: it carries no commitment (409).
            AuthorityError / AuthorityUnavailable: signing or the database failed.
        """
        svc = self.service
        record = svc.get_certificate(cert_id, ip=ip)
        if record.status == "revoked":
            raise CertificateRevoked(
                f"certificate {cert_id} is revoked: the authority attests valid certificates only"
            )
        if record.status != "valid":
            expired = CertificateExpired(
                f"certificate {cert_id} has expired: the authority attests valid certificates only"
            )
            expired.http_status = 410  # gone, as a revoked one (the class's 400 is for tokens)
            raise expired
        with svc.storage.transaction() as conn:
            kid, signer_ref = svc.keys.active(conn)
        with self._lock:
            cached = self._cache.get((cert_id, kid))
            if cached is not None:
                self._cache.move_to_end((cert_id, kid))
                return cached
        claims = CertificateClaims.from_payload(unverified_payload(record.token))
        statement = attestation_statement(claims, token=record.token, cert_url=record.cert_url)
        payload = statement_payload(statement)
        raw = low_s(svc.keys.jws.signer.sign(signer_ref, pae(PAYLOAD_TYPE, payload)))
        envelope = dsse_envelope(payload, [(kid, der_signature(raw))])
        with self._lock:
            self._cache[(cert_id, kid)] = envelope
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return envelope


def add_route(app: FastAPI, service: AuthorityService, ip_of: Any) -> None:
    """Register ``GET /api/certificates/{cert_id}/attestation`` (public) on ``app``."""
    from fastapi import Depends
    from fastapi.responses import JSONResponse

    attestations = Attestations(service)

    @app.get("/api/certificates/{cert_id}/attestation", tags=["public"], response_model=None)
    def certificate_attestation(
        cert_id: str,
        ip: Any = Depends(ip_of),  # noqa: B008 - FastAPI's dependency idiom
    ) -> JSONResponse:
        """The certificate as an in-toto Statement v1 in a DSSE envelope (no authentication)."""
        return JSONResponse(
            attestations.envelope(cert_id, ip=ip),
            media_type=ATTESTATION_MEDIA_TYPE,
            headers={"Cache-Control": "no-store"},
        )
