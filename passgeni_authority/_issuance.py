"""Issuance: a session is redeemed (once) for a signed certificate.

A request is authorised and admitted by its rate limits first (see
:class:`~._apikeys.Gate`); only then are its items checked (:mod:`._redeem`),
its certificates made and signed (:mod:`._mint`) and stored. The certificate
insert is the single-use gate: the unique ``session_jti`` lets at most one
certificate per session in, however many requests or processes race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from passgeni_core import InvalidRequest, PassgeniError, SessionAlreadyUsed
from passgeni_core.client import IssuedCertificateBody

from . import _hot, _sql, _status, _tlog, _util
from ._apikeys import Gate
from ._audit import Audit
from ._certificates import Certificates
from ._keys import SigningKeys
from ._mint import CertificateMaker, Signed
from ._models import Principal
from ._plans import Plans
from ._redeem import Parsed, parse_all
from ._replay import replayed
from ._sessions import Sessions
from ._settings import AuthoritySettings
from ._signing import LocalFileSigner
from ._storage import Storage

__all__ = ["Issuance"]

#: Rows per certificate INSERT (12 bound values each: far below SQLite's and
#: PostgreSQL's limits on parameters per statement).
_INSERT_CHUNK = 500


def _already_used() -> SessionAlreadyUsed:
    return SessionAlreadyUsed(
        "this generation session was already redeemed (sessions are single use)"
    )


@dataclass(frozen=True)
class _Plan:
    """What an admitted request's transaction decided before anything is signed."""

    principal: Principal
    team_id: str | None
    kid: str
    signer_ref: str
    dialect: str
    now_db: Any  # the request's time as the database stores it
    issued_at: datetime
    #: One per item: its error, or None for a certificate still to make.
    results: list[IssuedCertificateBody | PassgeniError | None]
    #: (position in results, parsed item, its request, its status-list index)
    todo: list[tuple[int, Parsed, dict[str, Any], int]]
    #: The monthly-quota bucket charged for ``todo`` (``None``: no quota applies).
    quota_bucket: str | None = None


class Issuance:
    """Redeeming sessions for certificates (``POST /api/generate-certificate(s)``)."""

    def __init__(
        self,
        settings: AuthoritySettings,
        storage: Storage,
        gate: Gate,
        sessions: Sessions,
        keys: SigningKeys,
        certs: Certificates,
        audit: Audit,
        plans: Plans | None = None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.gate = gate
        self.sessions = sessions
        self.keys = keys
        self.certs = certs
        self.audit = audit
        self.plans = plans
        self._signer = CertificateMaker(settings, keys, certs)
        self._indexes = _status.IndexBlocks()

    async def issue_certificate(
        self,
        api_key: str | None,
        body: Mapping[str, Any] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> IssuedCertificateBody:
        """See :meth:`AuthorityService.issue_certificate`."""
        results = await self._issue(
            api_key, body if isinstance(body, PassgeniError) else [body], ip, endpoint, batch=False
        )
        result = results[0]
        if isinstance(result, PassgeniError):
            raise result
        return result

    async def issue_certificates(
        self,
        api_key: str | None,
        items: Sequence[object] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> list[IssuedCertificateBody | PassgeniError]:
        """See :meth:`AuthorityService.issue_certificates`."""
        return await self._issue(api_key, items, ip, endpoint, batch=True)

    async def _issue(
        self,
        api_key: str | None,
        items: Sequence[object] | PassgeniError,
        ip: str | None,
        endpoint: str,
        *,
        batch: bool,
    ) -> list[IssuedCertificateBody | PassgeniError]:
        """Authorise and admit the request, plan its certificates, sign, store.

        A single certificate with a local key is planned, signed and stored in
        the request's one transaction (one commit). A batch, or any request
        to a remote signer (a network call per certificate), is planned in
        the request's transaction, which commits the caller's admission and
        the status-list indexes it reserved; it is then signed outside the
        write lock and off the event loop's critical section, and stored in a
        second transaction whose insert is the single-use gate. Either way
        nothing is signed before the caller is authorised and admitted. In
        the second form a key revoked between the two transactions still
        gets the certificates of the request admitted just before (as if it
        had arrived a moment earlier), and a failure in between leaves its
        reserved indexes unused (a 0 bit no certificate points at).
        """
        now = _util.now(self.settings)
        split = batch or not isinstance(self.keys.signer, LocalFileSigner)

        def plan(conn: Connection, principal: Principal) -> _Plan:
            if isinstance(items, PassgeniError):
                raise items
            if batch:
                self._check_batch(items)
            planned = self._plan_in(conn, principal, items, batch=batch, now=now, ip=ip)
            error = None if batch else planned.results[0]
            if isinstance(error, PassgeniError):
                raise error  # the single item's error, after admission
            return planned

        def plan_sign_store(
            conn: Connection, principal: Principal
        ) -> list[IssuedCertificateBody | PassgeniError]:
            planned = plan(conn, principal)
            results = self._store_in(conn, planned, self._sign(planned, ip), ip=ip, now=now)
            if not batch and isinstance(results[0], PassgeniError):
                raise results[0]  # rolls the unit back: the caller's bookkeeping stays
            return results

        if not split:
            return await self.gate.authorized(
                api_key, ip=ip, endpoint=endpoint, work=plan_sign_store
            )
        planned = await self.gate.authorized(api_key, ip=ip, endpoint=endpoint, work=plan)
        if isinstance(self.keys.signer, LocalFileSigner):
            signed = self._sign(planned, ip)
        else:
            signed = await asyncio.to_thread(self._sign, planned, ip)
        results = await self.storage.write(
            lambda conn: self._store_in(conn, planned, signed, ip=ip, now=now)
        )
        if not batch and isinstance(results[0], PassgeniError):
            raise results[0]
        return results

    def _check_batch(self, items: Sequence[object]) -> None:
        if not items:
            raise InvalidRequest("items must be a non-empty list")
        if len(items) > self.settings.max_batch_items:
            raise InvalidRequest(f"at most {self.settings.max_batch_items} items per batch")

    def _plan_in(
        self,
        conn: Connection,
        principal: Principal,
        items: Sequence[object],
        *,
        batch: bool,
        now: datetime,
        ip: str | None = None,
    ) -> _Plan:
        """Check the sessions of an admitted request, charge its certificates to
        the caller's monthly quota and reserve a status-list index for each
        certificate to sign, in ``conn`` (nothing is signed).

        Raises:
            QuotaExceeded: the certificates do not all fit in the caller's plan.
        """
        memo = _hot.memo(conn)
        cache_key = ("team", principal.user_id)
        if memo is not None and cache_key in memo:
            team_id, plan_row = memo[cache_key]
        else:
            plan_row = _hot.execute(
                conn, _sql.USER_PLANS, {"user_id": principal.user_id}
            ).fetchone()
            team_id = None if plan_row is None else plan_row[1]
            if memo is not None:
                memo[cache_key] = (team_id, plan_row)
        kid, signer_ref = self.keys.active(conn)
        results: list[IssuedCertificateBody | PassgeniError | None] = []
        todo: list[tuple[int, Parsed, dict[str, Any]]] = []
        seen: set[str] = set()
        for entry in parse_all(self.sessions.codec, self.settings, principal, items, now, batch):
            if isinstance(entry, PassgeniError):
                results.append(entry)
                continue
            jti = entry[0].jti
            if jti in seen:
                # The same session twice in one batch: the first item got it.
                results.append(_already_used())
                continue
            seen.add(jti)
            try:
                request = self.sessions.request_for(entry[0].rq, conn)
            except PassgeniError as exc:
                results.append(exc)
                continue
            todo.append((len(results), entry, request))
            results.append(None)
        quota_bucket = None
        if self.plans is not None and plan_row is not None and (plan_row[0] or plan_row[2]):
            quota_bucket = self.plans.charge(conn, principal, len(todo), now, ip=ip)
        # Offline revocation: one status-list index per certificate (see _status).
        first = self._indexes.take(conn, len(todo))
        return _Plan(
            principal=principal,
            team_id=team_id,
            kid=kid,
            signer_ref=signer_ref,
            dialect=conn.dialect.name,
            now_db=_hot.dt(conn, now),
            issued_at=datetime.fromtimestamp(int(now.timestamp()), UTC),
            results=results,
            todo=[(pos, entry, request, first + n) for n, (pos, entry, request) in enumerate(todo)],
            quota_bucket=quota_bucket,
        )

    def _sign(self, plan: _Plan, ip: str | None) -> list[tuple[int, Signed]]:
        """Sign the planned certificates: ``(position, signed)`` each."""
        signed = []
        for position, entry, request, status_idx in plan.todo:
            one = self._signer.sign(
                plan.dialect,
                plan.principal.user_id,
                plan.kid,
                plan.signer_ref,
                entry,
                request,
                status_idx,
                plan.issued_at,
                plan.now_db,
                ip,
            )
            one[0]["team_id"] = plan.team_id
            signed.append((position, one))
        return signed

    def _store_in(
        self,
        conn: Connection,
        plan: _Plan,
        signed: list[tuple[int, Signed]],
        *,
        ip: str | None,
        now: datetime,
    ) -> list[IssuedCertificateBody | PassgeniError]:
        """Store signed certificates whose sessions are still unredeemed (the
        single-use gate) with their events, in ``conn``; the results in order.
        Nothing is returned to a client before ``conn`` committed."""
        results = list(plan.results)
        redeemed = _insert_certificates(conn, [row for _, (row, _e, _i) in signed])
        retries = {}
        if len(redeemed) < len(signed):
            entries = {entry[0].jti: entry for _p, entry, _r, _i in plan.todo}
            retries = replayed(
                conn,
                self.certs,
                plan.principal.user_id,
                (
                    entries[row["session_jti"]]
                    for _, (row, _e, _i) in signed
                    if row["session_jti"] not in redeemed
                ),
            )
        for position, (row, event, issued) in signed:
            if row["session_jti"] in redeemed:
                results[position] = issued
                _hot.defer(conn, _sql.INSERT_EVENT, event)
                # Its leaf, in this transaction: durable before anyone is answered.
                _tlog.append_issued(conn, row["cert_id"], row["token"])
            else:
                results[position] = retries.get(row["session_jti"]) or _already_used()
        if plan.quota_bucket is not None and len(redeemed) < len(signed):
            # Charged when planned, not stored now (a replay is answered from its first time).
            Plans.refund(conn, plan.quota_bucket, len(signed) - len(redeemed))
        if redeemed:
            self.keys.note_expiry(
                conn, plan.kid, max(issued.expires_at for _p, (_r, _e, issued) in signed)
            )
            self.audit.check_anomaly(conn, plan.principal.user_id, ip, now)
        final = [r for r in results if r is not None]
        assert len(final) == len(results)
        return final


def _insert_certificates(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store certificates whose sessions are not redeemed yet; their session ids.

    The unique ``session_jti`` makes the insert the single-use gate, atomic
    in every backend and across processes: of two transactions racing for
    one session, the second inserts nothing for it (PostgreSQL waits for
    the first to commit or roll back), so each session yields at most one
    certificate however many processes race for it.
    """
    if conn.dialect.name == "sqlite":
        values = [tuple(row[c] for c in _sql.CERT_COLUMNS) for row in rows]
        if _hot.executemany(conn, _sql.INSERT_CERTIFICATE_SQLITE, values) == len(rows):
            return {row["session_jti"] for row in rows}
        # Some sessions were redeemed already. The rows that went in are the
        # ones whose cert ids (new, made by this request) are now stored.
        stored: set[str] = set()
        ids = [row["cert_id"] for row in rows]
        for start in range(0, len(ids), _INSERT_CHUNK):
            some = ids[start : start + _INSERT_CHUNK]
            found = _hot.execute(conn, _sql.stored_cert_ids(len(some)), some)
            stored.update(cert_id for (cert_id,) in found.fetchall())
        return {row["session_jti"] for row in rows if row["cert_id"] in stored}
    redeemed: set[str] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        params = {
            f"{column}{i}": row[column]
            for i, row in enumerate(chunk)
            for column in _sql.CERT_COLUMNS
        }
        cursor = _hot.execute(conn, _sql.insert_certificates(len(chunk)), params)
        redeemed.update(jti for (jti,) in cursor.fetchall())
    return redeemed
