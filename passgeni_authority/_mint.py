"""Making one signed certificate: its claims, from a template the certificates
of one user, request and second share, its signature, its row and its event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from passgeni_core import GENERATOR_ID, CertificateClaims
from passgeni_core.client import IssuedCertificateBody
from passgeni_core.model import Provenance

from . import _hot, _status
from ._certificates import Certificates
from ._ids import ordered_id
from ._keys import SigningKeys
from ._redeem import Parsed
from ._settings import AuthoritySettings
from ._util import LRU, instant

__all__ = ["CertTemplate", "CertificateMaker", "Signed"]

#: (certificate row, usage event row, answer) of one signed certificate.
Signed = tuple[dict[str, Any], dict[str, Any], IssuedCertificateBody]


@dataclass(frozen=True)
class CertTemplate:
    """What the certificates of one request (user, parameters, second) share,
    serialised once: the claims JSON up to the per-certificate fields."""

    prefix: bytes  # b'{"iss":...,' - the common claims (UTF-8), ready for the rest
    compliance_standard: str
    standards_met: tuple[str, ...]
    standards_column: str
    entropy_bits: float
    issued_at: datetime
    expires_at: datetime
    issued_at_db: Any
    expires_at_db: Any


class CertificateMaker:
    """Makes one certificate: its claims (from a template shared by the
    certificates of one user, request and second), its signature, its row."""

    def __init__(self, settings: AuthoritySettings, keys: SigningKeys, certs: Certificates) -> None:
        self.settings = settings
        self.keys = keys
        self.certs = certs
        # Claims templates of recent (user, request, second) (see template).
        self._templates = LRU(64)

    def template(
        self, dialect: str, user_id: str, digest: str, request: dict[str, Any], issued_at: datetime
    ) -> CertTemplate:
        """The shared part of the certificates of ``user_id`` for ``request`` issued
        at ``issued_at``: built once through :class:`CertificateClaims` (which
        checks and orders the claims), then reused for every such certificate."""
        key = (dialect, user_id, digest, issued_at)  # the digest names the request
        cached: CertTemplate | None = self._templates.get(key)
        if cached is not None:
            return cached
        claims = CertificateClaims.build(
            issuer=self.settings.effective_issuer,
            subject=user_id,
            cert_id="pg_" + "a" * 24,
            compliance_standard=request["compliance_standard"],
            standards_met=request["standards_met"],
            entropy_bits=request["entropy_bits"],
            naive_entropy_bits=request["naive_entropy_bits"],
            parameters=request["parameters"],
            entropy_source=request["entropy_source"],
            mapping_version=request["mapping_version"],
            provenance=(
                Provenance.from_dict(request["provenance"]) if request.get("provenance") else None
            ),
            issued_at=issued_at,
        )
        common = claims.to_payload()
        del common["jti"]  # per certificate, with the optional claims (see _sign_entry)
        body = json.dumps(common, separators=(",", ":"), ensure_ascii=False)
        template = CertTemplate(
            prefix=(body[:-1] + ",").encode("utf-8"),
            compliance_standard=claims.compliance_standard,
            standards_met=claims.standards_met,
            standards_column="," + ",".join(claims.standards_met) + ",",
            entropy_bits=claims.entropy_bits,
            issued_at=instant(claims.issued_at),
            expires_at=instant(claims.expires_at),
            issued_at_db=_hot.dt_for(dialect, claims.issued_at),
            expires_at_db=_hot.dt_for(dialect, claims.expires_at),
        )
        self._templates.put(key, template)
        return template

    def sign(
        self,
        dialect: str,
        user_id: str,
        kid: str,
        signer_ref: str,
        entry: Parsed,
        request: dict[str, Any],
        status_idx: int,
        issued_at: datetime,
        now_db: Any,
        ip: str | None,
    ) -> Signed:
        """One certificate: claims, signature, its row and its usage event (stored form).

        The claims are the request's template (:meth:`template`) followed by
        this certificate's own: ``jti``, its generation proof (the session's seed
        commitment and nonce), target and label, and its status-list reference. The row's ``team_id`` is set
        by the transaction that stores it. ``now_db`` is the request's time
        as the database stores it (the usage event's)."""
        claims, commitment, target, label = entry
        template = self.template(dialect, user_id, claims.rq, request, issued_at)
        cert_id = f"pg_{ordered_id()}"
        own: dict[str, Any] = {"jti": cert_id}
        if commitment is not None:
            own["credential_commitment"] = commitment
        if claims.sc:
            # Observed by the authority: the seed commitment it was sent before it
            # chose the nonce, both bound into the session token it made.
            own["generation"] = {
                "generator": GENERATOR_ID,
                "seed_commitment": claims.sc,
                "nonce": claims.an,
            }
        if target is not None:
            own["target"] = target.to_dict()
        if label is not None:
            own["label"] = label
        own["status"] = _status.status_reference(self.settings, status_idx).to_dict()
        # Serialised once, straight into the signed bytes (the stored claims are
        # the token's). orjson: compact UTF-8 like the template, and faster.
        token = self.keys.jws.token_for_body(
            kid, signer_ref, template.prefix + orjson.dumps(own)[1:]
        )
        row = {
            "cert_id": cert_id,
            "owner_user_id": user_id,
            "team_id": None,
            "session_jti": claims.jti,
            "token": token,
            "kid": kid,
            "compliance_standard": template.compliance_standard,
            "standards_met": template.standards_column,
            "status": "valid",
            "issued_at": template.issued_at_db,
            "expires_at": template.expires_at_db,
            "status_list_idx": status_idx,
        }
        event = {
            "kind": "certificate_issued",
            "user_id": user_id,
            "ip": ip,
            "at": now_db,
            "detail": f'{{"cert_id":"{cert_id}"}}',  # cert ids are [a-z0-9_]: no escaping
        }
        issued = IssuedCertificateBody(
            cert_id=cert_id,
            cert_url=self.certs.url(cert_id),
            token=token,
            compliance_standard=template.compliance_standard,
            standards_met=template.standards_met,
            entropy_bits=template.entropy_bits,
            issued_at=template.issued_at,
            expires_at=template.expires_at,
        )
        return row, event, issued
