"""The authority's rules, as plain Python (no HTTP): the FastAPI app is a thin
layer over :class:`AuthorityService`, and tests or other front ends can call it
directly.

:class:`AuthorityService` is a facade: each responsibility lives in its own
part, and the service composes them and delegates.

=========================  ==================================================
part (module)              responsibility
=========================  ==================================================
``storage``                the database: ``_storage`` (engines, transactions),
                           ``_db`` (schema), ``_sql`` (every raw statement),
                           ``_hot`` (driver), ``_commit``/``_loopcommit``
                           (group commit)
``api_keys``/``gate``      API keys; authentication and admission (``_apikeys``)
``limiter``                rate limits (``_limits``, ``_ratelimit``)
``sessions``               generation sessions (``_sessions``)
``issuance``               redeeming sessions for certificates (``_issuance``,
                           ``_redeem``: the items, ``_mint``: one certificate)
``certs``                  stored certificates and revocation (``_certificates``)
``keys``                   signing keys and the JWKS (``_keys``; signers:
                           ``_signing``)
``events``/``audit_log``   the usage-event trail (``_events``); audit pages
                           and anomalies (``_audit``)
``log``                    the transparency log: appends, checkpoints, proofs
                           (``_tlog``)
(functions)                status lists, key history, manifests (``_status``)
=========================  ==================================================

Operations on the request path are coroutines (they await their commit);
admin and cold operations are plain methods that block in their own
transaction (FastAPI runs them in a worker thread). No operation exists in
both styles. Every public method raises only ``passgeni_core`` errors (each
carries the ``code`` and HTTP status the API answers with).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from passgeni_core import NotFound, PassgeniError, RateLimited
from passgeni_core.client import (
    GenerationBatchBody,
    IssuedCertificateBody,
)

from ._apikeys import ApiKeys, Gate, hash_api_key
from ._audit import Audit
from ._certificates import Certificates
from ._events import UsageEvents
from ._issuance import Issuance
from ._keys import SigningKeys, ensure_key
from ._limits import RateLimiter
from ._models import (
    KEY_PREFIX,
    ApiKeyInfo,
    CertificateRecord,
    CreatedApiKey,
    Principal,
    SigningKeyInfo,
)
from ._opsservice import Operations
from ._plans import Plans
from ._sessions import SessionCodec, Sessions, session_secret
from ._settings import AuthoritySettings
from ._signing import LocalFileSigner, Signer
from ._storage import Storage
from ._tlog import TransparencyLog, log_signer
from ._util import now

__all__ = [
    "KEY_PREFIX",
    "ApiKeyInfo",
    "AuthorityService",
    "CertificateRecord",
    "CreatedApiKey",
    "Principal",
    "SigningKeyInfo",
    "hash_api_key",
]


class AuthorityService(Operations):
    """One authority process's view of the shared database and signer.

    Construction runs the migrations (``alembic upgrade head``) and creates
    the session secret and the first signing key if the database has none,
    under a cross-process lock. Use as a context manager or call
    :meth:`close`.

    Raises (constructor):
        AuthorityUnavailable: the database cannot be reached.
        AuthorityError: migrations or key creation failed.
    """

    def __init__(self, settings: AuthoritySettings) -> None:
        self.settings = settings
        self.signer: Signer = settings.signer or LocalFileSigner(settings.state_dir / "keys")
        secret: list[bytes] = []
        log_key: list[Any] = []

        def bootstrap(conn: Connection) -> None:
            secret.append(session_secret(conn))
            ensure_key(conn, self.signer, self.now())
            log_key.append(log_signer(conn, settings))

        self.storage = Storage(settings, bootstrap=bootstrap)
        self.events = UsageEvents(self.storage)
        self.keys = SigningKeys(settings, self.storage, self.signer)
        self.limiter = RateLimiter(settings.rate_limits)
        self.api_keys = ApiKeys(settings, self.storage, self.events)
        self.gate = Gate(settings, self.storage, self.api_keys, self.limiter, self.events)
        self.sessions = Sessions(settings, SessionCodec(secret[0]), self.gate, self.events)
        self.certs = Certificates(
            settings, self.storage, self.events, self.limiter, self.gate.refusals
        )
        self.log = TransparencyLog(self.storage, log_key[0])
        self.audit_log = Audit(settings, self.storage, self.certs, self.events)
        self.plans = Plans(settings, self.storage, self.events, self.gate.refusals)
        self.issuance = Issuance(
            settings,
            self.storage,
            self.gate,
            self.sessions,
            self.keys,
            self.certs,
            self.audit_log,
            self.plans,
        )
        self._wire_operations()

    def __repr__(self) -> str:
        return f"AuthorityService(settings={self.settings!r})"

    def __enter__(self) -> AuthorityService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._close_operations()
        self.events.close()
        self.storage.close()

    @property
    def engine(self) -> Engine:
        return self.storage.engine

    def now(self) -> datetime:
        return now(self.settings)

    # -- users and API keys (admin: blocking) ------------------------------------------

    def create_api_key(
        self,
        user: str,
        *,
        team: str | None = None,
        rate_limit: int | None = None,
        plan: str | None = None,
        operator: bool = False,
    ) -> CreatedApiKey:
        """Create a key for ``user`` (created if new); with ``team`` it is a team key;
        ``operator`` lets its dashboard show every team.

        Raises:
            InvalidRequest: a malformed user/team name, a non-positive rate
                limit, an unknown plan, or the user already belongs to another team.

        ``plan`` sets the plan of the team (team key) or the user; ``operator``
        makes a key that reads every tenant's events.
            AuthorityUnavailable: the database failed.
        """
        return self.api_keys.create(
            user, team=team, rate_limit=rate_limit, plan=plan, operator=operator
        )

    def list_api_keys(self) -> list[ApiKeyInfo]:
        """Every key (revoked ones too), oldest first. Raises AuthorityUnavailable."""
        return self.api_keys.list()

    def lookup_api_key(self, api_key: str) -> ApiKeyInfo | None:
        """The key's record if ``api_key`` is a known key (revoked or not), else None.

        No rate limit and no usage event: for local tooling (the embedded
        authority checking its stored key). Raises AuthorityUnavailable.
        """
        return self.api_keys.lookup(api_key)

    def revoke_api_key(self, prefix: str) -> ApiKeyInfo:
        """Revoke the key with this public prefix (idempotent).

        Raises:
            NotFound: no key has this prefix.
            AuthorityUnavailable: the database failed.
        """
        return self.api_keys.revoke(prefix)

    # -- the request path (async: admission, and the operation in the same commit) -----

    async def authorize(self, api_key: str | None, *, ip: str | None, endpoint: str) -> Principal:
        """Authenticate a request, apply the per-user limits and record the access,
        committed in the group commit of the request path (for the endpoints
        whose operation then runs in a transaction of its own).

        Raises:
            Unauthenticated: no key, a malformed, unknown or revoked key.
            RateLimited: the per-user minute window or the burst bucket is
                exhausted (``retry_after`` set).
            AuthorityUnavailable: the database failed.
        """
        return await self.gate.authorize(api_key, ip=ip, endpoint=endpoint)

    async def open_sessions(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        body: Mapping[str, Any] | PassgeniError,
        count: int | PassgeniError,
        generation_attempts: int,
    ) -> GenerationBatchBody:
        """``POST /api/generate`` and ``/api/generate-batch``: authorise, rate-limit,
        re-validate the request and open ``count`` 60-second, single-use sessions.

        ``body`` (or ``count``) may be the error parsing it gave, raised
        after authentication and rate limits, as over HTTP. Opening sessions
        stores nothing per session (tokens are stateless), so for an
        automation key admitted from its rate-limit leases, and a request
        this process has already stored, the answer waits for no commit:
        the access event is queued for the next one. Every other case
        (errors included) is decided and recorded in one transaction, with
        the same answers.

        Raises:
            Unauthenticated / RateLimited: as :meth:`authorize`; RateLimited
                also for too many generation attempts from ``ip`` this hour.
            InvalidRequest: unknown fields, a ``password`` field, no standard,
                a bad ``count``.
            UnknownPreset / InvalidParameters / LengthOutOfRange /
                ConflictingParameters / PresetNotMet: the request's parameters.
            AuthorityUnavailable: the database failed.
        """
        batch = await self.sessions.open(
            api_key,
            ip=ip,
            endpoint=endpoint,
            body=body,
            count=count,
            generation_attempts=generation_attempts,
        )
        self.metrics.sessions_opened.inc(len(batch.generation_session_ids))
        return batch

    async def issue_certificate(
        self,
        api_key: str | None,
        body: Mapping[str, Any] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> IssuedCertificateBody:
        """``POST /api/generate-certificate``: authorise, rate-limit, then redeem a
        session (once) and sign its certificate, committed before this returns.
        Nothing is signed for a caller that is not admitted.

        Raises:
            Unauthenticated / RateLimited: as :meth:`authorize`.
            InvalidRequest: unknown fields, a malformed commitment, target or label.
            SessionInvalid: forged, malformed, unknown or another tenant's session.
            SessionExpired: the session is older than its lifetime.
            SessionAlreadyUsed: the session was already redeemed.
            AuthorityError / AuthorityUnavailable: signing or the database failed.
        """
        try:
            issued = await self.issuance.issue_certificate(api_key, body, ip=ip, endpoint=endpoint)
        except PassgeniError as exc:
            if exc.code == "session_expired":
                self.metrics.sessions_expired.inc()
            raise
        self.metrics.issued.labels(issued.compliance_standard).inc()
        return issued

    async def issue_certificates(
        self,
        api_key: str | None,
        items: Sequence[object] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> list[IssuedCertificateBody | PassgeniError]:
        """``POST /api/generate-certificates``: :meth:`issue_certificate` for many
        sessions in one transaction, one result per item, in order (an error
        per failed item).

        Raises:
            Unauthenticated / RateLimited: as :meth:`authorize`.
            InvalidRequest: ``items`` is empty or has more than ``max_batch_items``.
            AuthorityError / AuthorityUnavailable: signing or the database failed.
        """
        results = await self.issuance.issue_certificates(api_key, items, ip=ip, endpoint=endpoint)
        metrics = self.metrics
        for result in results:
            if isinstance(result, PassgeniError):
                metrics.refusals.labels(result.code).inc()
                if result.code == "session_expired":
                    metrics.sessions_expired.inc()
            else:
                metrics.issued.labels(result.compliance_standard).inc()
        return results

    async def wait_for_queued_events(self) -> None:
        """Wait until every usage event queued by :meth:`open_sessions` is committed
        (for a clean shutdown: the event loop cancels what is pending when it stops)."""
        await self.events.wait_for_queued()

    # -- certificates (blocking) ------------------------------------------------------

    def cert_url(self, cert_id: str) -> str:
        return self.certs.url(cert_id)

    def get_certificate(self, cert_id: str, *, ip: str | None = None) -> CertificateRecord:
        """The public record of a certificate (no authentication); records a view.

        Raises:
            NotFound: no such certificate.
            AuthorityUnavailable: the database failed.
        """
        return self.certs.get(cert_id, ip=ip)

    def get_certificates(
        self, cert_ids: list[str], *, ip: str | None = None
    ) -> list[CertificateRecord | NotFound | RateLimited]:
        """:meth:`get_certificate` for many ids (see ``Certificates.get_many``)."""
        return self.certs.get_many(cert_ids, ip=ip)

    def revoke_certificate(
        self, principal: Principal, cert_id: str, reason: object, *, ip: str | None = None
    ) -> CertificateRecord:
        """Mark a certificate revoked (the record stays; idempotent: the first
        revocation's time and reason are kept).

        Raises:
            InvalidRequest: the reason is not 1-500 characters.
            NotFound: no such certificate *for this caller* (another tenant's
                certificate answers the same, so existence is not revealed).
            AuthorityUnavailable: the database failed.
        """
        return self.certs.revoke(principal, cert_id, reason, ip=ip)

    # -- signing keys (blocking) -------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """Every public key whose certificates can still be verified (RFC 7517).

        Raises:
            AuthorityUnavailable: the database failed.
        """
        return self.keys.jwks()

    def rotate_keys(self) -> SigningKeyInfo:
        """Create a new signing key and make it active; the old one is retired
        (it stays in the JWKS until its last certificate expires).

        Raises:
            AuthorityError / AuthorityUnavailable: the signer or the database failed.
        """
        return self.keys.rotate()

    def signing_keys(self) -> list[SigningKeyInfo]:
        """Every key this authority ever used, newest first. Raises AuthorityUnavailable."""
        return self.keys.history()

    def health(self) -> dict[str, str]:
        """Liveness: ``{"status": "ok"}`` while this process answers (nothing else is checked)."""
        return {"status": "ok"}
