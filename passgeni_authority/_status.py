"""Offline revocation and evidence support: signed status lists, the signing-key
history, and manifest signatures for evidence bundles.

* Every new certificate gets a global index ``i`` (from ``status_list_counter``);
  it lives in list ``i // status_list_size`` at position ``i % status_list_size``
  and carries ``status: {status_list: {idx, uri}}`` with
  ``uri = {public_url}/status/{list_id}`` (no query string).
* ``GET /status/{list_id}`` serves the list as a signed JWT (IETF OAuth Token
  Status List: ``typ: statuslist+jwt``, ``sub`` = its URI, ``iat``, ``exp``,
  ``ttl``, ``status_list: {bits: 1, lst}``), built from the database on every
  request, so a revocation shows in the very next fetch.
* ``GET /status`` lists the URIs of every list in use.
* ``GET /api/signing-keys`` (public): every key the authority ever signed with
  (JWKS) plus when each was created and retired: an auditor checks
  certificates older than the current JWKS's horizon.
* ``POST /api/evidence/sign-manifest`` (authenticated): the authority signs the
  SHA-256 of an evidence bundle's manifest (``typ: passgeni-manifest+jwt``).

Issuance uses only the index allocation (:class:`IndexBlocks` over
:func:`allocate_indexes`, and :func:`status_reference`); the rest serves the
routes below.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, select
from sqlalchemy.engine import Connection

from passgeni_core import (
    STATUS_INVALID,
    STATUS_LIST_TYP,
    InvalidRequest,
    NotFound,
    StatusList,
    StatusReference,
)
from passgeni_core.client import ManifestSignatureBody, StatusListsBody

from . import _hot, _sql
from ._db import certificates, signing_keys, status_list_counter, usage_events
from ._issuance_http import dumps
from ._settings import AuthoritySettings
from ._util import instant, iso

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._models import Principal
    from ._service import AuthorityService

__all__ = [
    "MANIFEST_TYP",
    "IndexBlocks",
    "add_routes",
    "allocate_indexes",
    "jwks_history",
    "list_uris",
    "sign_manifest",
    "status_list_token",
    "status_reference",
]

MANIFEST_TYP = "passgeni-manifest+jwt"
_COUNTER = "default"
_LIST_ID_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def allocate_indexes(conn: Connection, count: int) -> int:
    """Reserve ``count`` consecutive global indexes; returns the first.

    One atomic ``UPDATE ... RETURNING`` on a single row: concurrent issuers (in
    any process) serialise on that row, so no index is handed out twice.
    Indexes reserved for items that then fail are simply never used (their
    bit stays 0 and no certificate points at it).
    """
    if count <= 0:
        return 0
    # On the driver connection (see _hot): this runs once per issuing request.
    row = _hot.execute(
        conn, _sql.NEXT_STATUS_INDEXES, {"count": count, "name": _COUNTER}
    ).fetchone()
    if row is None:  # a database migrated by hand without the seed row
        conn.execute(insert(status_list_counter).values(name=_COUNTER, next_idx=count))
        return 0
    return int(row[0]) - count


class IndexBlocks:
    """Status-list indexes handed out from blocks this process reserved.

    Every issuing request used to update the one counter row, which every
    issuer in every process then waits on; a block of ``size`` indexes is
    reserved with the same atomic update and served from memory until it runs
    out. A block becomes usable only once the transaction that reserved it
    has committed (see ``_hot.after_commit``): a reservation that rolls back
    hands out nothing twice. Indexes a process never uses (the rest of its
    block when it stops, those of a request that fails) stay 0 bits that no
    certificate points at, which status lists allow.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = max(1, size)
        self._next = self._end = 0
        self._lock = threading.Lock()

    def take(self, conn: Connection, count: int) -> int:
        """``count`` consecutive unused indexes; returns the first."""
        if count <= 0:
            return 0
        with self._lock:
            if self._end - self._next >= count:
                first = self._next
                self._next += count
                return first
        reserved = max(count, self._size)
        first = allocate_indexes(conn, reserved)
        if reserved > count:
            rest = (first + count, first + reserved)
            _hot.after_commit(conn, lambda: self._adopt(rest))
        return first

    def _adopt(self, block: tuple[int, int]) -> None:
        with self._lock:
            if self._end - self._next < block[1] - block[0]:
                self._next, self._end = block


def list_uri(settings: AuthoritySettings, list_id: int) -> str:
    return f"{settings.public_url}/status/{list_id}"


def status_reference(settings: AuthoritySettings, global_idx: int) -> StatusReference:
    """The certificate's ``status.status_list`` claim for a global index."""
    size = settings.status_list_size
    return StatusReference(idx=global_idx % size, uri=list_uri(settings, global_idx // size))


def _next_idx(conn: Connection) -> int:
    value = conn.execute(
        select(status_list_counter.c.next_idx).where(status_list_counter.c.name == _COUNTER)
    ).scalar_one_or_none()
    return int(value or 0)


def list_uris(service: AuthorityService) -> list[str]:
    """The URI of every status list in use (at least list 0)."""
    with service.storage.transaction() as conn:
        used = _next_idx(conn)
    count = max(1, -(-used // service.settings.status_list_size))
    return [list_uri(service.settings, n) for n in range(count)]


def status_list_token(service: AuthorityService, list_id: str | int) -> str:
    """The signed status list ``list_id``, fresh from the database.

    Raises:
        NotFound: no such list (malformed id, or no index allocated in it yet;
            list 0 always exists).
        AuthorityError / AuthorityUnavailable: signing or the database failed.
    """
    text = str(list_id)
    if not _LIST_ID_RE.match(text):
        raise NotFound(f"no status list {text[:20]!r}")
    number = int(text)
    size = service.settings.status_list_size
    first = number * size
    now = service.now()
    with service.storage.transaction() as conn:
        if number > 0 and _next_idx(conn) <= first:
            raise NotFound(f"no status list {number}")
        revoked = conn.execute(
            select(certificates.c.status_list_idx).where(
                and_(
                    certificates.c.status == "revoked",
                    certificates.c.status_list_idx >= first,
                    certificates.c.status_list_idx < first + size,
                )
            )
        ).all()
        kid, signer_ref = service.keys.active(conn)
    uri = list_uri(service.settings, number)
    lst = StatusList.empty(size, uri=uri)
    for (idx,) in revoked:
        lst.set(int(idx) - first, STATUS_INVALID)
    iat = int(now.timestamp())
    payload = {
        "iss": service.settings.effective_issuer,
        "sub": uri,
        "iat": iat,
        "exp": iat + service.settings.status_list_lifetime_seconds,
        "ttl": service.settings.status_list_ttl_seconds,
        "status_list": lst.to_claim(),
    }
    return service.keys.jws.typed_token(kid, signer_ref, payload, typ=STATUS_LIST_TYP)


def jwks_history(service: AuthorityService) -> dict[str, Any]:
    """Every signing key ever used: ``{"keys": [JWK...], "history": [{kid, created_at,
    retired_at}]}``, the active key first. Public data only. Raises AuthorityUnavailable."""
    with service.storage.transaction() as conn:
        rows = conn.execute(
            select(
                signing_keys.c.kid,
                signing_keys.c.public_jwk,
                signing_keys.c.created_at,
                signing_keys.c.retired_at,
            ).order_by(
                # The active key first, then the most recently retired.
                signing_keys.c.retired_at.is_not(None),
                signing_keys.c.retired_at.desc(),
                signing_keys.c.created_at.desc(),
                signing_keys.c.kid,
            )
        ).all()
    return {
        "keys": [json.loads(r.public_jwk) for r in rows],
        "history": [
            {"kid": r.kid, "created_at": iso(r.created_at), "retired_at": iso(r.retired_at)}
            for r in rows
        ],
    }


def sign_manifest(
    service: AuthorityService, principal: Principal, body: dict[str, Any]
) -> ManifestSignatureBody:
    """Sign an evidence manifest's SHA-256 (hex) with the active key.

    The token (``typ: passgeni-manifest+jwt``) states who asked and when; it is
    not a certificate (no ``cert_version``), so it can never pass as one.

    Raises:
        InvalidRequest: unknown fields, or ``manifest_sha256`` is not 64 hex digits.
        AuthorityError / AuthorityUnavailable: signing or the database failed.
    """
    unknown = sorted(str(k)[:40] for k in body if k != "manifest_sha256")
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    digest = body.get("manifest_sha256")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidRequest("manifest_sha256 must be 64 lower-case hex digits (SHA-256)")
    now = service.now()
    iat = int(now.timestamp())
    jti = f"pgm_{secrets.token_hex(12)}"
    with service.storage.transaction() as conn:
        kid, signer_ref = service.keys.active(conn)
        conn.execute(
            insert(usage_events).values(
                kind="manifest_signed",
                user_id=principal.user_id,
                ip=None,
                at=now,
                detail=json.dumps({"jti": jti, "manifest_sha256": digest}),
            )
        )
    payload = {
        "iss": service.settings.effective_issuer,
        "sub": principal.user_id,
        "iat": iat,
        "jti": jti,
        "purpose": "evidence-manifest",
        "manifest_sha256": digest,
    }
    token = service.keys.jws.typed_token(kid, signer_ref, payload, typ=MANIFEST_TYP)
    return ManifestSignatureBody(token=token, kid=kid, issued_at=instant(now))


def add_routes(app: FastAPI, service: AuthorityService, principal: Any, json_body: Any) -> None:
    """Register the status-list, key-history and manifest routes on ``app``.

    ``principal`` and ``json_body`` are the app's own dependencies (API-key
    authentication with rate limits; strict JSON bodies).
    """
    from fastapi import Depends
    from fastapi.responses import JSONResponse, Response

    ttl = service.settings.status_list_ttl_seconds

    def _json(body: Any) -> Response:
        return Response(dumps(body), media_type="application/json")

    @app.get("/status", tags=["public"], response_model=None)
    def status_lists() -> Response:
        """The URIs of the authority's signed status lists."""
        return _json(StatusListsBody(status_lists=list_uris(service)))

    @app.get("/status/{list_id}", tags=["public"], response_model=None)
    def status_list(list_id: str) -> Response:
        """A signed status list (``application/statuslist+jwt``)."""
        return Response(
            status_list_token(service, list_id),
            media_type="application/statuslist+jwt",
            headers={"Cache-Control": f"max-age={ttl}"},
        )

    @app.get("/api/signing-keys", tags=["public"], response_model=None)
    def signing_key_history() -> JSONResponse:
        """Every signing key ever used, with its creation and retirement times."""
        return JSONResponse(jwks_history(service), headers={"Cache-Control": "max-age=60"})

    # Plain defaults rather than Annotated aliases: this module postpones
    # annotations, and FastAPI could not resolve local aliases by name.
    @app.post("/api/evidence/sign-manifest", tags=["evidence"], response_model=None)
    def sign_evidence_manifest(
        who: Any = Depends(principal),  # noqa: B008 - FastAPI's dependency idiom
        body: Any = Depends(json_body),  # noqa: B008
    ) -> Response:
        """Sign the SHA-256 of an evidence bundle's manifest."""
        return _json(sign_manifest(service, who, body))
