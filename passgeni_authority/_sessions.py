"""Generation-session tokens: compact HS256 JWS made and checked by the authority itself.

Why HS256 and not ES256: only the authority ever verifies a session token
(no third party needs a public key for it), an HMAC is far cheaper than an
ECDSA signature on the issuance hot path, and the one secret is created once
and stored in the database (``authority_meta``) so every process sharing the
database accepts the sessions of every other. The token only proves "this
authority issued session ``jti`` to user ``sub`` until ``exp``, for the
re-validated generation request whose digest is ``rq``"; the request itself
is stored once per distinct request, and single use is enforced by the
database (the certificate's unique ``session_jti``), never by the token.
Opening a session therefore writes nothing per session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from passgeni_core import (
    GENERATOR_ID,
    NONCE_BYTES,
    InvalidRequest,
    PassgeniError,
    SeedCommitmentRequired,
    SessionInvalid,
    detect_entropy_source,
)
from passgeni_core.client import GenerationBatchBody

from . import _hot, _limits, _sql
from ._apikeys import Gate
from ._db import authority_meta
from ._events import UsageEvents, access_detail
from ._ids import ordered_id
from ._models import Principal
from ._requests import validate_request
from ._settings import AuthoritySettings
from ._util import LRU, now

__all__ = ["SessionClaims", "SessionCodec", "Sessions", "session_secret"]

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"pgs+jwt"}').rstrip(b"=") + b"."
_TOKEN_RE = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$")
_MAX_TOKEN = 1024
_SAFE_RE = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
_B64_32 = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class SessionClaims:
    jti: str
    sub: str
    iat: int
    exp: int
    #: Digest of the re-validated generation request (``generation_requests``).
    rq: str
    #: The client's seed commitment, sent when the session was opened (base64url).
    sc: str = ""
    #: The authority's nonce for this session (base64url of 32 CSPRNG bytes).
    an: str = ""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class SessionCodec:
    """Signs and checks session tokens with the shared secret (never shown in reprs)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "SessionCodec(secret='***')"

    def _mac(self, signing_input: bytes) -> bytes:
        return hmac.digest(self._secret, signing_input, hashlib.sha256)

    def encode(self, claims: SessionClaims) -> str:
        """The token for ``claims``.

        Raises:
            ValueError: a claim that would need escaping in JSON (they are
                generated ids, user names checked at creation and digests).
        """
        if not (
            _SAFE_RE.match(claims.jti)
            and _SAFE_RE.match(claims.sub)
            and _SAFE_RE.match(claims.rq)
            and (not claims.sc or _B64_32.match(claims.sc))
            and (not claims.an or _B64_32.match(claims.an))
        ):
            raise ValueError("session claims must be plain identifiers")
        # Written directly (the fields need no escaping, checked above):
        # thousands of sessions a second are opened during bulk rotation.
        proof = f',"sc":"{claims.sc}","an":"{claims.an}"' if claims.sc else ""
        body = (
            f'{{"jti":"{claims.jti}","sub":"{claims.sub}","iat":{int(claims.iat)},'
            f'"exp":{int(claims.exp)},"rq":"{claims.rq}"{proof}}}'
        ).encode("ascii")
        signing_input = _HEADER + _b64(body)
        return (signing_input + b"." + _b64(self._mac(signing_input))).decode("ascii")

    def decode(self, token: object) -> SessionClaims:
        """The claims of a token this authority made (expiry is the caller's check).

        Raises:
            SessionInvalid: not a string, malformed, or the MAC does not verify.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN:
            raise _invalid()
        raw = token.encode("ascii", errors="replace")
        if not _TOKEN_RE.match(raw) or not raw.startswith(_HEADER):
            raise _invalid()
        signing_input, _, mac = raw.rpartition(b".")
        if not hmac.compare_digest(_b64(self._mac(signing_input)), mac):
            raise _invalid()
        body = signing_input[len(_HEADER) :]
        try:
            # orjson: the body is our own (its MAC just verified), so json's
            # strictness about duplicate keys buys nothing, and it is faster.
            data = orjson.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
            claims = SessionClaims(
                jti=str(data["jti"]),
                sub=str(data["sub"]),
                iat=int(data["iat"]),
                exp=int(data["exp"]),
                rq=str(data["rq"]),
                sc=str(data.get("sc", "")),
                an=str(data.get("an", "")),
            )
        except (ValueError, KeyError, TypeError):
            raise _invalid() from None
        return claims


def _invalid() -> SessionInvalid:
    # Made only when raised: every redeemed session passes through decode().
    return SessionInvalid("generation_session_id was not issued by this authority")


# -- opening sessions -----------------------------------------------------------------


def _new_nonce() -> str:
    """The authority's contribution to a generation: 32 bytes of its own CSPRNG."""
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()


def _take_commitments(
    body: Mapping[str, Any] | PassgeniError, count: int | PassgeniError
) -> tuple[Mapping[str, Any] | PassgeniError, list[str] | PassgeniError]:
    """``body`` without its seed commitments, and the commitments (one per session).

    A problem is returned, not raised: like every validation error it is answered
    after authentication and rate limits.
    """
    if isinstance(body, PassgeniError) or not isinstance(body, Mapping):
        return body, InvalidRequest("no body")
    rest = dict(body)
    one, many = rest.pop("seed_commitment", None), rest.pop("seed_commitments", None)
    if isinstance(count, PassgeniError):
        return rest, count
    if one is None and many is None:
        return rest, SeedCommitmentRequired(
            "seed_commitment is required: commit to the generation seed (see "
            "docs/generator.md), so that only a generated credential can be certified"
        )
    if one is not None and many is not None:
        return rest, InvalidRequest("send seed_commitment or seed_commitments, not both")
    given = [one] if one is not None else many
    if not isinstance(given, list) or len(given) != count:
        return rest, InvalidRequest(
            f"seed_commitments must be a list of {count} commitment(s), one per session"
        )
    if not all(isinstance(c, str) and _B64_32.match(c) for c in given):
        return rest, InvalidRequest("a seed commitment must be 43 base64url characters")
    return rest, given


# The row name in authority_meta, not a secret.
_SESSION_SECRET_ROW = "session_hmac_secret"  # noqa: S105
#: Entries of each in-process cache (validated requests, stored requests).
_CACHE_SIZE = 1024

#: ``(request, digest, stored JSON)`` of a validated generation body.
Validated = tuple[dict[str, Any], str, str]


def session_secret(conn: Connection) -> bytes:
    """The HMAC secret every process shares, created on first start-up (in ``conn``)."""
    row = conn.execute(
        select(authority_meta.c.value).where(authority_meta.c.name == _SESSION_SECRET_ROW)
    ).first()
    if row is not None:
        return bytes.fromhex(row[0])
    secret = secrets.token_bytes(32)
    conn.execute(insert(authority_meta).values(name=_SESSION_SECRET_ROW, value=secret.hex()))
    return secret


class Sessions:
    """Generation sessions: a request is re-validated (once per distinct body),
    stored (once per distinct request) and answered with session tokens
    that refer to it by digest."""

    def __init__(
        self,
        settings: AuthoritySettings,
        codec: SessionCodec,
        gate: Gate,
        events: UsageEvents,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.gate = gate
        self.events = events
        # Observed once, at start-up: where this authority's nonces come from
        # (_new_nonce) and whether its host is in FIPS mode.
        self.nonce_source = detect_entropy_source(
            fips_flag_path=settings.fips_flag_path, api="secrets"
        )
        # canonical generation body -> Validated: validated once.
        self._validated = LRU(_CACHE_SIZE)
        # digest -> re-validated request (content-addressed, so never stale).
        self._requests = LRU(_CACHE_SIZE)
        # Digests known to be committed in generation_requests (added after the commit).
        self._persisted: set[str] = set()

    async def open(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        body: Mapping[str, Any] | PassgeniError,
        count: int | PassgeniError,
        generation_attempts: int,
    ) -> GenerationBatchBody:
        """See :meth:`AuthorityService.open_sessions`."""
        at = now(self.settings)
        body, commitments = _take_commitments(body, count)
        fast = self.gate.admitted_without_write(api_key, at)
        principal, quotas = (None, []) if fast is None else fast
        if (
            principal is not None
            and not isinstance(body, PassgeniError)
            and isinstance(count, int)
            and 1 <= count <= self.settings.max_batch_items
            and not isinstance(commitments, PassgeniError)
        ):
            try:
                validated: Validated | None = self.validated_request(body)
            except PassgeniError:
                validated = None  # answered, and recorded, by the ordinary path
            if validated is not None and validated[1] in self._persisted:
                self.events.record_later(
                    self.events.row(
                        "api_access",
                        user_id=principal.user_id,
                        ip=ip,
                        now=at,
                        detail=access_detail(endpoint, principal.key_prefix),
                    )
                )
                _limits.report(quotas)
                return self._tokens_for(principal, validated, commitments, at)
        if principal is not None:
            # The ordinary path charges the request: the leased tokens go back.
            self.gate.limiter.release_fast(principal, at.timestamp())
        checked: Validated | PassgeniError | None = None
        if principal is None and isinstance(body, Mapping) and not self._seen(body):
            # Nothing expensive before authentication (issue #21): an unknown key is
            # refused by the ordinary path without its body being validated, and a new
            # body is validated off the event loop (exact entropy at length 256 costs
            # a good part of a second).
            if self.gate.known_principal(api_key) is None:
                checked = InvalidRequest("not validated: the API key is not known")
            else:
                checked = await asyncio.to_thread(self._checked, body)
        return await self.gate.authorized(
            api_key,
            ip=ip,
            endpoint=endpoint,
            work=self._work(body, count, commitments, checked),
            generation_attempts=generation_attempts,
        )

    def _seen(self, body: Mapping[str, Any]) -> bool:
        """Whether ``body`` was validated already (its validation is then a lookup)."""
        try:
            key = json.dumps(body, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return False
        return self._validated.get(key) is not None

    def _checked(self, body: Mapping[str, Any]) -> Validated | PassgeniError:
        try:
            return self.validated_request(body)
        except PassgeniError as exc:
            return exc

    def _work(
        self,
        body: Mapping[str, Any] | PassgeniError,
        count: int | PassgeniError,
        commitments: list[str] | PassgeniError,
        checked: Validated | PassgeniError | None = None,
    ) -> Callable[[Connection, Principal], GenerationBatchBody]:
        """Validate a generation request now; the returned work opens ``count``
        sessions with its parameters.

        Validation errors (or ``body`` itself when it is an error, e.g.
        unparsable JSON) are raised by the work, so they come after
        authentication and rate limits, as over HTTP.
        """
        error: PassgeniError | None = None
        validated: Validated | None = None
        try:
            if isinstance(body, PassgeniError):
                raise body
            if isinstance(count, PassgeniError):
                raise count
            if not 1 <= count <= self.settings.max_batch_items:
                raise InvalidRequest(f"count must be 1-{self.settings.max_batch_items}")
            if isinstance(checked, PassgeniError):
                raise checked
            validated = checked if checked is not None else self.validated_request(body)
            if isinstance(commitments, PassgeniError):
                raise commitments
        except PassgeniError as exc:
            error = exc
        at = now(self.settings)

        def work(conn: Connection, principal: Principal) -> GenerationBatchBody:
            if error is not None:
                raise error
            assert validated is not None and isinstance(commitments, list)
            _request, digest, stored = validated
            if digest not in self._persisted:
                # Once per distinct request, committed before any of its sessions
                # is answered, so every process can redeem them.
                _hot.execute(
                    conn,
                    _sql.INSERT_REQUEST,
                    {"digest": digest, "request": stored, "created_at": _hot.dt(conn, at)},
                )
                _hot.after_commit(conn, lambda: self._persisted.add(digest))
            return self._tokens_for(principal, validated, commitments, at)

        return work

    def validated_request(self, body: Mapping[str, Any]) -> Validated:
        """``(request, digest, stored JSON)`` of a generation body.

        Validation is deterministic, so a body already seen by this process
        is not validated again (bulk rotation repeats one body thousands of
        times). Raises what :meth:`_validate` raises.
        """
        try:
            key: str | None = json.dumps(body, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            key = None  # not JSON data (a Python caller): validate, don't cache
        hit: Validated | None = None if key is None else self._validated.get(key)
        if hit is not None:
            return hit
        request = self._validate(body)
        stored = json.dumps(request, sort_keys=True, separators=(",", ":"))
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(stored.encode("utf-8")).digest()[:16])
            .decode("ascii")
            .rstrip("=")
        )
        value = (request, digest, stored)
        if key is not None:
            self._validated.put(key, value)
        self._requests.put(digest, request)
        return value

    def _validate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`validate_request` under this authority's FIPS rule and nonce source."""
        return validate_request(
            body, fips_rule=self.settings.fips_rule, nonce_source=self.nonce_source
        )

    def _tokens_for(
        self, principal: Principal, validated: Validated, commitments: list[str], at: datetime
    ) -> GenerationBatchBody:
        """One session per seed commitment, each with a fresh nonce bound into its token."""
        request, digest, _stored = validated
        iat = int(at.timestamp())
        exp = iat + self.settings.session_lifetime_seconds
        encode = self.codec.encode
        user_id = principal.user_id
        nonces = [_new_nonce() for _ in commitments]
        return GenerationBatchBody(
            generation_session_ids=[
                encode(
                    SessionClaims(
                        jti=ordered_id(), sub=user_id, iat=iat, exp=exp, rq=digest, sc=sc, an=an
                    )
                )
                for sc, an in zip(commitments, nonces, strict=True)
            ],
            authority_nonces=nonces,
            generator=GENERATOR_ID,
            expires_in=self.settings.session_lifetime_seconds,
            compliance_standard=request["compliance_standard"],
            standards_met=tuple(request["standards_met"]),
            entropy_bits=request["entropy_bits"],
            naive_entropy_bits=request["naive_entropy_bits"],
            parameters=request["parameters"],
            mapping_version=request["mapping_version"],
        )

    def request_for(self, digest: str, conn: Connection) -> dict[str, Any]:
        """The re-validated request a session token refers to (read in ``conn``).

        Raises:
            SessionInvalid: no such request (a token from before migration
                0003, or from another authority sharing the secret but not
                the database).
        """
        request: dict[str, Any] | None = self._requests.get(digest)
        if request is not None:
            return request
        rows = _hot.execute(conn, _sql.REQUEST_BY_DIGEST, {"digest": digest}).fetchall()
        if not rows:
            raise SessionInvalid("generation session is unknown to this authority")
        request = json.loads(rows[0][0])
        assert isinstance(request, dict)
        self._requests.put(digest, request)
        return request
