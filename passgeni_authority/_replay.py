"""A redemption retried by its session's owner gets the same certificate.

An answer can be lost after the transaction that stored its certificate
committed (a connection cut, a proxy timeout). The client then does not know
the certificate's token, and without it the password it generated cannot be
stored with its proof: a valid certificate for a password nobody kept. So a
session already redeemed is answered with the certificate it yielded when the
retry is the *same* request: the session token (its MAC binds the owner, the
seed commitment and the authority's nonce), the same target and the same
label. Anything else is a second use and is still refused
(``session_already_used``), as is a retry once the certificate was revoked:
an answer must never hand out a revoked certificate as new.

A retry gains nothing a thief could use: only the session's owner can present
the session (``parse_redeem`` checks the MAC and the owner), the token is the
one already public at its cert URL, and no new certificate is made.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from passgeni_core import Target
from passgeni_core.client import IssuedCertificateBody

from . import _hot, _sql
from ._certificates import Certificates
from ._redeem import Parsed

__all__ = ["replayed"]


def _payload(token: str) -> dict[str, Any]:
    # The token is the authority's own, read from its own database.
    segment = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def _same_request(payload: dict[str, Any], target: Target | None, label: str | None) -> bool:
    return payload.get("target") == (None if target is None else target.to_dict()) and (
        payload.get("label") == label
    )


def replayed(
    conn: Connection,
    certs: Certificates,
    owner: str,
    entries: Iterable[Parsed],
) -> dict[str, IssuedCertificateBody]:
    """The stored certificates that answer retries among ``entries`` (whose
    sessions the insert found already redeemed), by session jti."""
    wanted = {entry[0].jti: entry for entry in entries}
    if not wanted:
        return {}
    params = {f"j{i}": jti for i, jti in enumerate(wanted)}
    rows = _hot.execute(conn, _sql.certificates_by_session(len(params)), params).fetchall()
    answers: dict[str, IssuedCertificateBody] = {}
    for jti, cert_id, owner_user_id, token, status in rows:
        _claims, _commitment, target, label = wanted[jti]
        if owner_user_id != owner or status != "valid":
            continue
        payload = _payload(token)
        if not _same_request(payload, target, label):
            continue
        answers[jti] = IssuedCertificateBody(
            cert_id=cert_id,
            cert_url=certs.url(cert_id),
            token=token,
            compliance_standard=payload["compliance_standard"],
            standards_met=tuple(payload["standards_met"]),
            entropy_bits=payload["entropy_bits"],
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    return answers
