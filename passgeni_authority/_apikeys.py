"""API keys and authentication: keys are created, listed and revoked here, and
every request is authenticated and admitted (rate limits, the access event)
here, before its operation runs."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from passgeni_core import (
    AuthorityUnavailable,
    InvalidRequest,
    NotFound,
    PassgeniError,
    Unauthenticated,
)

from . import _hot, _limits, _sql
from ._authfail import FailedAuthentications
from ._db import api_keys, plans, teams, users
from ._events import Refusals, UsageEvents, access_detail
from ._ids import b32
from ._keyformat import check_key_format, hash_api_key
from ._limits import Admission, RateLimiter
from ._models import KEY_PREFIX, ApiKeyInfo, CreatedApiKey, Principal
from ._settings import AuthoritySettings
from ._storage import Storage
from ._util import now

__all__ = ["OPERATOR_SCOPE", "ApiKeys", "Gate", "hash_api_key"]

#: ``api_keys.scope`` of an operator's key.
OPERATOR_SCOPE = "operator"

log = logging.getLogger("passgeni_authority")

_T = TypeVar("_T")

_SEEN_GOOD_MAX = 4096  # keys remembered as good for the pre-filter, at most

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


def _key_info(row: RowMapping) -> ApiKeyInfo:
    return ApiKeyInfo(
        prefix=row["prefix"],
        user_id=row["user_id"],
        team_id=row["team_id"],
        rate_limit=row["rate_limit"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        operator=row["scope"] == OPERATOR_SCOPE,
    )


class ApiKeys:
    """Creating, listing, looking up and revoking API keys (admin operations)."""

    def __init__(
        self, settings: AuthoritySettings, storage: Storage, events: UsageEvents | None = None
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.events = events
        # Key rows until the next revocation by any process (SQLite: one host): the
        # signal file at once for this path's spelling, the database within 1 s for all.
        self.rows = _hot.KeyRows(
            storage.sibling_path("key-revocations"), probe=self._revocation_state
        )

    def _revocation_state(self) -> tuple[Any, ...]:
        rows = self.storage.readers.read(_sql.KEY_REVOCATION_STATE, {})
        return tuple(rows[0]) if rows else ()

    def create(
        self,
        user: str,
        *,
        team: str | None = None,
        rate_limit: int | None = None,
        plan: str | None = None,
        operator: bool = False,
    ) -> CreatedApiKey:
        """See :meth:`AuthorityService.create_api_key`."""
        for what, name in (("user", user), ("team", team)):
            if name is not None and not _NAME_RE.match(name):
                raise InvalidRequest(
                    f"{what} name must be 1-64 characters of letters, digits and ._@+-"
                )
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 1
        ):
            raise InvalidRequest("rate_limit must be a positive number of requests per minute")
        if plan is not None and not isinstance(plan, str):
            raise InvalidRequest("plan must be a plan name")
        at = now(self.settings)
        prefix = b32(5)
        key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        with self.storage.transaction() as conn:
            if (
                plan is not None
                and conn.execute(select(plans.c.name).where(plans.c.name == plan)).first() is None
            ):
                raise InvalidRequest(f"no plan {plan[:32]!r} (see passgeni authority plans)")
            if (
                team is not None
                and conn.execute(select(teams.c.id).where(teams.c.id == team)).first() is None
            ):
                conn.execute(insert(teams).values(id=team, created_at=at))
            existing = conn.execute(select(users.c.team_id).where(users.c.id == user)).first()
            if existing is None:
                conn.execute(insert(users).values(id=user, team_id=team, created_at=at))
            elif team is not None and existing.team_id not in (None, team):
                raise InvalidRequest(f"user {user} belongs to team {existing.team_id}")
            elif team is not None and existing.team_id is None:
                conn.execute(update(users).where(users.c.id == user).values(team_id=team))
            conn.execute(
                insert(api_keys).values(
                    prefix=prefix,
                    key_hash=hash_api_key(key),
                    user_id=user,
                    team_id=team,
                    rate_limit=rate_limit,
                    created_at=at,
                    scope=OPERATOR_SCOPE if operator else None,
                )
            )
            if plan is not None:
                # The team's plan for a team key, else the user's (checked by the caller).
                table = teams if team is not None else users
                conn.execute(update(table).where(table.c.id == (team or user)).values(plan=plan))
            if self.events is not None:
                self.events.record(
                    conn,
                    "api_key_created",
                    user_id=user,
                    ip=None,
                    now=at,
                    detail={
                        "key": prefix,
                        "team": team or "",
                        "rate_limit": rate_limit or 0,
                        "operator": operator,
                        "plan": plan or "",
                    },
                )
        log.info("created API key %s for user %s", prefix, user)
        return CreatedApiKey(
            key=key, prefix=prefix, user_id=user, team_id=team, rate_limit=rate_limit, created_at=at
        )

    def list(self) -> list[ApiKeyInfo]:
        with self.storage.transaction() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [_key_info(row) for row in rows]

    def lookup(self, api_key: str) -> ApiKeyInfo | None:
        with self.storage.transaction() as conn:
            row = (
                conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_api_key(api_key)))
                .mappings()
                .first()
            )
        return None if row is None else _key_info(row)

    def revoke(self, prefix: str) -> ApiKeyInfo:
        """See :meth:`AuthorityService.revoke_api_key`."""
        prefix = prefix.removeprefix(f"{KEY_PREFIX}_").split("_")[0]
        at = now(self.settings)
        with self.storage.transaction() as conn:
            changed = conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            ).rowcount
            row = (
                conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
            )
            if row is not None and changed and self.events is not None:
                self.events.record(
                    conn,
                    "api_key_revoked",
                    user_id=row["user_id"],
                    ip=None,
                    now=at,
                    detail={"key": prefix},
                )
        if row is None:
            raise NotFound(f"no API key with prefix {prefix[:16]!r}")
        try:
            self.rows.revoked()
        except OSError as exc:
            # Committed, but processes caching the key would not know: say so.
            # Revoking again (idempotent) sends the signal again.
            raise AuthorityUnavailable(
                f"API key {prefix} is revoked in the database, but the running "
                f"authority processes could not be told ({exc.strerror or exc}); "
                "revoke it again or restart them"
            ) from None
        log.info("revoked API key %s", prefix)
        return _key_info(row)


class _WorkFailed(Exception):
    """An operation's own error inside :meth:`Gate.authorized` (internal)."""

    def __init__(self, error: PassgeniError) -> None:
        super().__init__(error.code)
        self.error = error


#: ``(caller, its error, the operation's result, the quotas to report)``.
_Outcome = tuple[Principal | None, PassgeniError | None, Any, list[_limits.Quota]]


class Gate:
    """Authentication and admission of every request: the key, then its rate
    limits, then the access event; only then the request's operation."""

    def __init__(
        self,
        settings: AuthoritySettings,
        storage: Storage,
        keys: ApiKeys,
        limiter: RateLimiter,
        events: UsageEvents,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.keys = keys
        self.limiter = limiter
        self.events = events
        self.refusals = Refusals(events)
        self.failures = FailedAuthentications(settings.rate_limits.failed_auth_per_ip_per_minute)
        #: Keys that authenticated here pass the failed-authentication pre-filter (the
        #: lookup still refuses one revoked since); ``keys.rows`` caches nothing on PostgreSQL.
        self._seen_good: dict[str, None] = {}

    def _principal(self, row: Any, prefix: str) -> Principal | None:
        if row is None or row[0] != prefix or row[4] is not None:
            return None  # unknown or revoked
        return Principal(
            user_id=row[1],
            team_id=row[2],
            key_prefix=row[0],
            rate_limit=row[3],
            operator=row[5] == OPERATOR_SCOPE,
        )

    def _admit_in(
        self, conn: Connection, api_key: str, prefix: str, *, ip: str | None, endpoint: str, at: Any
    ) -> tuple[Principal | None, Admission | None]:
        """Look the key up, apply the caller's limits and record the access, in ``conn``.

        Returns ``(None, None)`` for an unknown or revoked key (its failure is
        recorded, aggregated), else the principal and what its limits said.
        A refusal is recorded aggregated too (see :class:`Refusals`).
        """
        key_hash = hash_api_key(api_key)
        row = self.keys.rows.get(key_hash)
        if row is None:
            # Without the process cache (PostgreSQL), once per group commit.
            memo = _hot.memo(conn)
            cache_key = ("api_key", key_hash)
            if memo is not None and cache_key in memo:
                row = memo[cache_key]
            else:
                row = _hot.execute(conn, _sql.KEY_LOOKUP, {"key_hash": key_hash}).fetchone()
                if memo is not None:
                    memo[cache_key] = row
            self.keys.rows.put(key_hash, row)
        principal = self._principal(row, prefix)
        if principal is None:
            self._seen_good.pop(key_hash, None)
            # The public prefix only, never the key; and whose key it is, if anyone's.
            owner = row[1] if row is not None else None
            if owner is None:
                known = _hot.execute(conn, _sql.KEY_OWNER, {"prefix": prefix}).fetchone()
                owner = None if known is None else known[0]
            self.refusals.note(
                conn,
                "auth_failed",
                user_id=owner,
                ip=ip,
                at=at,
                detail={"endpoint": endpoint, "key": prefix},
            )
            return None, None
        if key_hash not in self._seen_good:
            if len(self._seen_good) >= _SEEN_GOOD_MAX:
                self._seen_good.clear()  # forgetting only makes the pre-filter stricter
            self._seen_good[key_hash] = None
        admission = self.limiter.admit(conn, principal, at.timestamp())
        if admission.retry is None:
            self.events.record(
                conn,
                "api_access",
                user_id=principal.user_id,
                ip=ip,
                now=at,
                detail=access_detail(endpoint, principal.key_prefix),
            )
        else:
            self.refused(conn, principal, ip=ip, endpoint=endpoint, at=at, admission=admission)
        return principal, admission

    def refused(
        self,
        conn: Connection,
        principal: Principal,
        *,
        ip: str | None,
        endpoint: str,
        at: Any,
        admission: Admission,
    ) -> None:
        """Record a request refused by a rate limit (aggregated)."""
        self.refusals.note(
            conn,
            "rate_limited",
            user_id=principal.user_id,
            ip=ip,
            at=at,
            detail={
                "endpoint": endpoint,
                "key": principal.key_prefix,
                "policy": admission.policy or "",
            },
        )

    def unauthenticated(self, *, ip: str | None, endpoint: str, reason: str) -> None:
        """Count a request without a usable key (missing, malformed): written with
        the next refusal or the periodic flush (nothing else is written for it)."""
        self.refusals.note(
            None,
            "auth_failed",
            user_id=None,
            ip=ip,
            at=now(self.settings),
            detail={"endpoint": endpoint, "key": reason},
        )

    async def authorize(self, api_key: str | None, *, ip: str | None, endpoint: str) -> Principal:
        """See :meth:`AuthorityService.authorize`: :meth:`authorized` with no operation."""
        return await self.authorized(
            api_key, ip=ip, endpoint=endpoint, work=lambda _conn, principal: principal
        )

    def known_principal(self, api_key: str | None) -> Principal | None:
        """The caller if its key is well-formed, known and unrevoked (a read, no write).

        Says nothing about rate limits and records nothing: for deciding whether
        expensive work may start; the ordinary path still decides and records.
        """
        if not api_key:
            return None
        try:
            prefix = check_key_format(api_key)
        except PassgeniError:
            return None
        key_hash = hash_api_key(api_key)
        row = self.keys.rows.get(key_hash)
        if row is None:
            rows = self.storage.readers.read(_sql.KEY_LOOKUP, {"key_hash": key_hash})
            row = tuple(rows[0]) if rows else None
            self.keys.rows.put(key_hash, row)
        return self._principal(row, prefix)

    def admitted_without_write(
        self, api_key: str | None, at: Any
    ) -> tuple[Principal, list[_limits.Quota]] | None:
        """The caller if it can be admitted with no write at all, else ``None``.

        That is: a valid, unrevoked automation key (read from committed
        state, so a revocation applies at once) whose every rate limit has
        tokens left in a lease this process holds (see ``_ratelimit``).
        ``None`` sends the request down the ordinary path, which decides
        (and records) everything in one transaction.
        """
        if not self.storage.grouped:
            return None
        principal = self.known_principal(api_key)
        if principal is None or principal.rate_limit is None:
            return None
        quotas = self.limiter.admit_from_leases(principal, at.timestamp())
        if quotas is None:
            return None
        return principal, quotas

    async def authorized(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        work: Callable[[Connection, Principal], _T],
        generation_attempts: int = 0,
    ) -> _T:
        """Authorise a request and run its operation in one transaction (one commit).

        The same rules as :meth:`authorize` followed by the operation, in the
        same order (unknown key, then rate limits, then ``work``'s own
        errors), but the bookkeeping (limits, the access event) and the
        operation share one commit. If ``work`` raises a PassgeniError, its
        writes are undone, the bookkeeping is committed on its own, and the
        error is raised here. ``generation_attempts`` counts towards the
        per-IP generation limit (keys without their own limit).
        """
        at = now(self.settings).timestamp()
        self.failures.admit(ip, api_key, self._known_good, at)
        try:
            unit = self._unit(
                api_key, ip=ip, endpoint=endpoint, work=work, attempts=generation_attempts
            )
            outcome = await self.storage.write(unit)
            value: _T = self._result(outcome)
        except _WorkFailed as failed:
            # The operation failed: its unit was rolled back whole; record the
            # request's bookkeeping alone, then answer with the operation's error.
            alone = self._unit(
                api_key, ip=ip, endpoint=endpoint, work=None, attempts=generation_attempts
            )
            self._result(await self.storage.write(alone))
            raise failed.error from None
        except Unauthenticated:
            self.failures.failed(ip, at)
            raise
        return value

    def _known_good(self, api_key: str) -> bool:
        key_hash = hash_api_key(api_key)  # this process's memory only, no database
        if key_hash in self._seen_good:
            return True
        row = self.keys.rows.get(key_hash)
        return row is not None and row[4] is None

    def _unit(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        work: Callable[[Connection, Principal], Any] | None,
        attempts: int,
    ) -> Callable[[Connection], _Outcome]:
        """The unit of :meth:`authorized`: bookkeeping then ``work`` (``None``:
        bookkeeping only). ``work``'s error is raised as :class:`_WorkFailed`,
        so the whole unit (bookkeeping included) rolls back: one savepoint per
        request instead of two on the success path."""
        try:
            prefix = check_key_format(api_key)
        except Unauthenticated:
            self.unauthenticated(
                ip=ip, endpoint=endpoint, reason="missing" if not api_key else "malformed"
            )
            raise
        assert api_key is not None
        at = now(self.settings)

        def unit(conn: Connection) -> _Outcome:
            principal, admission = self._admit_in(
                conn, api_key, prefix, ip=ip, endpoint=endpoint, at=at
            )
            if principal is None or admission is None:
                return None, None, None, []
            if admission.retry is not None:
                limited = self.limiter.user_limited(principal, admission.retry)
                return principal, limited, None, admission.quotas
            # Counted before validation: a failed attempt is still an attempt.
            refused = self.limiter.generation(
                conn, principal, ip, attempts, at.timestamp(), admission
            )
            if refused is not None:
                self.refused(conn, principal, ip=ip, endpoint=endpoint, at=at, admission=admission)
                return principal, refused, None, admission.quotas
            if work is None:
                return principal, None, None, admission.quotas
            try:
                return principal, None, work(conn, principal), admission.quotas
            except PassgeniError as exc:
                raise _WorkFailed(exc) from None

        return unit

    @staticmethod
    def _result(outcome: _Outcome) -> Any:
        principal, error, result, quotas = outcome
        _limits.report(quotas)
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if error is not None:
            raise error
        return result
