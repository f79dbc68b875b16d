"""The authority's rules, as plain Python (no HTTP): the FastAPI app is a thin
layer over :class:`AuthorityService`, and tests or other front ends can call it
directly.

Every public method raises only ``passgeni_core`` errors (each carries the
``code`` and HTTP status the API answers with).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine, and_, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import SQLAlchemyError

from passgeni_core import (
    MAPPING_VERSION,
    AuthorityError,
    AuthorityUnavailable,
    CertificateClaims,
    EntropySource,
    GenerationParameters,
    InvalidRequest,
    NotFound,
    PassgeniError,
    RateLimited,
    SessionAlreadyUsed,
    SessionExpired,
    SessionInvalid,
    Target,
    Unauthenticated,
    check_preset,
    entropy_report,
    get_preset,
    list_presets,
    standards_met,
)

from . import _hot, _ratelimit, _status
from ._commit import GroupCommitter, WriteLock
from ._db import (
    ANOMALY_KIND,
    api_keys,
    authority_meta,
    certificates,
    make_engine,
    redact_url,
    run_migrations,
    signing_keys,
    startup_lock,
    teams,
    usage_events,
    users,
)
from ._sessions import SessionClaims, SessionCodec
from ._settings import AuthoritySettings
from ._signing import JWSBuilder, LocalFileSigner, NewKey, Signer, b64url_decode

__all__ = [
    "ApiKeyInfo",
    "AuditPage",
    "AuthorityService",
    "CertificateRecord",
    "CreatedApiKey",
    "GenerationBatch",
    "GenerationTicket",
    "IssuedCertificate",
    "Principal",
    "SigningKeyInfo",
]

log = logging.getLogger("passgeni_authority")

_T = TypeVar("_T")

# Hot-path SQL, run on the driver connection (see _hot): plain SQL that SQLite
# and PostgreSQL both accept, every value bound.
_KEY_LOOKUP = (
    "SELECT prefix, user_id, team_id, rate_limit, revoked_at FROM api_keys "
    "WHERE key_hash = :key_hash"
)
_INSERT_EVENT = (
    "INSERT INTO usage_events (kind, user_id, ip, at, detail) "
    "VALUES (:kind, :user_id, :ip, :at, :detail)"
)
_INSERT_REQUEST = (
    "INSERT INTO generation_requests (digest, request, created_at) "
    "VALUES (:digest, :request, :created_at) ON CONFLICT (digest) DO NOTHING"
)
_REQUEST_BY_DIGEST = "SELECT request FROM generation_requests WHERE digest = :digest"
_CERT_COLUMNS = (
    "cert_id",
    "owner_user_id",
    "team_id",
    "session_jti",
    "token",
    "kid",
    "compliance_standard",
    "standards_met",
    "status",
    "issued_at",
    "expires_at",
    "status_list_idx",
)
#: Rows per certificate INSERT (12 bound values each: far below SQLite's and
#: PostgreSQL's limits on parameters per statement).
_INSERT_CHUNK = 500
_USER_TEAM = "SELECT team_id FROM users WHERE id = :user_id"
#: Never lowered: another process may have committed a later bound.
_RAISE_LAST_EXPIRY = (
    "UPDATE signing_keys SET last_expires_at = :bound "
    "WHERE kid = :kid AND (last_expires_at IS NULL OR last_expires_at < :bound)"
)
#: Headroom of ``signing_keys.last_expires_at`` (see ``_note_expiry``).
LAST_EXPIRY_SLACK = timedelta(hours=1)
_LATEST_ANOMALY = (
    "SELECT at FROM usage_events WHERE kind = 'anomaly' AND user_id = :user_id "
    "AND at > :since ORDER BY at DESC LIMIT 1"
)
_COUNT_24H = (
    "SELECT count(*) FROM certificates WHERE owner_user_id = :user_id AND issued_at > :since"
)


_Parsed = tuple[SessionClaims, str | None, Target | None, str | None]

#: Entries of each in-process cache (validated requests, stored requests).
_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=64)
def _insert_certificates_sql(rows: int) -> str:
    """``INSERT`` of ``rows`` certificates that skips any whose session was
    already redeemed and returns the sessions it did redeem."""
    values = ", ".join(
        "(" + ", ".join(f":{c}{i}" for c in _CERT_COLUMNS) + ")" for i in range(rows)
    )
    return (
        f"INSERT INTO certificates ({', '.join(_CERT_COLUMNS)}) VALUES {values} "  # noqa: S608
        "ON CONFLICT (session_jti) DO NOTHING RETURNING session_jti"
    )


#: SQLite's form: one row per execution, positional. Measured on a 60,000-row
#: table, 100 certificates per statement: 9 us per row with ``executemany``
#: against 34 us for the multi-row ``VALUES ... RETURNING`` (1,200 named
#: parameters bound, the rows run through a VALUES co-routine); in-process
#: statements cost no round trip, so nothing is gained by fewer of them.
_INSERT_CERTIFICATE_SQLITE = (
    f"INSERT INTO certificates ({', '.join(_CERT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_CERT_COLUMNS))}) ON CONFLICT (session_jti) DO NOTHING"
)


class _LRU(OrderedDict[Any, Any]):
    """A small bounded mapping (least recently stored entries go first); thread-safe
    enough for its use: single dict operations under the GIL, and a lost
    entry only costs a recomputation."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        while len(self) > self._size:
            self.popitem(last=False)


class _WorkFailed(Exception):
    """An operation's own error inside :meth:`AuthorityService._authorized` (internal)."""

    def __init__(self, error: PassgeniError) -> None:
        super().__init__(error.code)
        self.error = error


def _already_used() -> SessionAlreadyUsed:
    return SessionAlreadyUsed(
        "this generation session was already redeemed (sessions are single use)"
    )


def _db_unavailable(exc: Exception) -> AuthorityUnavailable:
    return AuthorityUnavailable(f"the authority's database failed: {type(exc).__name__}")


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_PREFIX_RE = re.compile(r"^[a-z2-7]{8}$")
_COMMITMENT_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_CERT_ID_RE = re.compile(r"^pg_[a-z2-7]{24}$")
_GENERATE_FIELDS = frozenset({"compliance_standard", "preset", "parameters", "entropy_source"})
_REDEEM_FIELDS = frozenset({"generation_session_id", "credential_commitment", "target", "label"})
_STATUSES = ("valid", "expired", "revoked")
# The row name in authority_meta, not a secret.
_SESSION_SECRET_ROW = "session_hmac_secret"  # noqa: S105
KEY_PREFIX = "pgk"


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
# Two base32 digits per entry: ids are made on every request, and
# base64.b32encode is pure Python (about 3 us for 15 bytes; this, 1 us).
_B32_PAIRS = [a + b for a in _B32 for b in _B32]


def _b32(nbytes: int) -> str:
    """``nbytes`` random bytes (a multiple of 5) as lowercase unpadded base32."""
    return _b32_of(int.from_bytes(secrets.token_bytes(nbytes), "big"), nbytes)


def _b32_of(value: int, nbytes: int) -> str:
    pairs = _B32_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(nbytes * 8 - 10, -1, -10)])


def _ordered_id() -> str:
    """24 base32 digits: 48 bits of milliseconds, then 72 random bits.

    For the columns with a unique index that every issuance writes
    (``cert_id``, ``session_jti``). With fully random keys each insert lands
    on its own leaf page of an index that outgrows the cache, and a commit of
    100 certificates wrote ~200 scattered pages: measured 96 us per row at
    60,000 rows against 34 us with this prefix, and growing with the table.
    Keys made in the same instant share their leading digits, so inserts
    cluster in the newest pages. 72 random bits per millisecond keep ids
    impractical to enumerate; the time they reveal is on the page anyway.
    """
    now_ms = time.time_ns() // 1_000_000
    return _b32_of((now_ms & 0xFFFF_FFFF_FFFF) << 72 | secrets.randbits(72), 15)


_PLAIN_RE = re.compile(r"^[A-Za-z0-9 ./_:@+-]*$")


def _detail_json(detail: Mapping[str, Any]) -> str:
    """A usage event's detail as compact JSON; plain strings written directly
    (every request records one: ``{"endpoint": ..., "key": ...}``)."""
    if all(
        isinstance(v, str) and _PLAIN_RE.match(v) and _PLAIN_RE.match(k) for k, v in detail.items()
    ):
        return "{" + ",".join(f'"{k}":"{v}"' for k, v in detail.items()) + "}"
    return json.dumps(dict(detail), separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _access_detail(endpoint: str, key_prefix: str) -> str:
    """The detail of an ``api_access`` event, serialised once per endpoint and key
    (every request records one)."""
    return _detail_json({"endpoint": endpoint, "key": key_prefix})


def _encodable(value: str | None) -> bool:
    # JSON's "\ud800" escape parses to a lone surrogate, which no UTF-8 token can hold.
    if value is None:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _token_claims(token: str) -> dict[str, Any]:
    """The claims of one of our own stored tokens (not a verification: the row
    is ours, and clients verify the signature against the JWKS)."""
    claims: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return claims


@functools.lru_cache(maxsize=256)
def _iso(value: datetime | None) -> str | None:
    # Cached: a batch's (and a second's) certificates share their instants.
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _CertTemplate:
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


def hash_api_key(key: str) -> str:
    """SHA-256 (hex) of an API key: what the database stores instead of the key.

    A plain hash suffices (no slow KDF): keys carry 256 random bits, so there
    is nothing to brute-force, and a fast hash keeps every request cheap.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# --- public result types ---------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: str
    #: Set for team keys: the caller acts for the whole team.
    team_id: str | None
    key_prefix: str
    #: Requests per minute of an automation key (``None``: the defaults apply).
    rate_limit: int | None = None


@dataclass(frozen=True, repr=False)
class CreatedApiKey:
    """A new API key. ``key`` is shown once and never stored; ``repr`` hides it."""

    key: str
    prefix: str
    user_id: str
    team_id: str | None
    rate_limit: int | None
    created_at: datetime

    def __repr__(self) -> str:
        return (
            f"CreatedApiKey(key='{KEY_PREFIX}_{self.prefix}_***', prefix={self.prefix!r}, "
            f"user_id={self.user_id!r}, team_id={self.team_id!r}, rate_limit={self.rate_limit!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_key": self.key,
            "prefix": self.prefix,
            "user": self.user_id,
            "team": self.team_id,
            "rate_limit": self.rate_limit,
            "created_at": _iso(self.created_at),
        }


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listed (never the key itself)."""

    prefix: str
    user_id: str
    team_id: str | None
    rate_limit: int | None
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "user": self.user_id,
            "team": self.team_id,
            "rate_limit": self.rate_limit,
            "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at),
        }


@dataclass(frozen=True)
class SigningKeyInfo:
    kid: str
    created_at: datetime
    retired_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "created_at": _iso(self.created_at),
            "retired_at": _iso(self.retired_at),
            "active": self.retired_at is None,
        }


@dataclass(frozen=True, repr=False)
class GenerationTicket:
    """The answer to ``POST /api/generate``."""

    generation_session_id: str
    expires_in: int
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float
    parameters: dict[str, Any]
    mapping_version: str

    def __repr__(self) -> str:
        return (
            f"GenerationTicket(compliance_standard={self.compliance_standard!r}, "
            f"entropy_bits={self.entropy_bits!r}, expires_in={self.expires_in!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation_session_id": self.generation_session_id,
            "expires_in": self.expires_in,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "naive_entropy_bits": self.naive_entropy_bits,
            "parameters": self.parameters,
            "mapping_version": self.mapping_version,
        }


@dataclass(frozen=True, repr=False)
class GenerationBatch:
    """The answer to ``POST /api/generate-batch``: many sessions, same parameters."""

    generation_session_ids: list[str]
    expires_in: int
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float
    parameters: dict[str, Any]
    mapping_version: str

    def __repr__(self) -> str:
        return (
            f"GenerationBatch(count={len(self.generation_session_ids)}, "
            f"compliance_standard={self.compliance_standard!r})"
        )

    def tickets(self) -> list[GenerationTicket]:
        return [
            GenerationTicket(
                generation_session_id=sid,
                expires_in=self.expires_in,
                compliance_standard=self.compliance_standard,
                standards_met=self.standards_met,
                entropy_bits=self.entropy_bits,
                naive_entropy_bits=self.naive_entropy_bits,
                parameters=self.parameters,
                mapping_version=self.mapping_version,
            )
            for sid in self.generation_session_ids
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "generation_session_ids": list(self.generation_session_ids),
            "expires_in": self.expires_in,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "naive_entropy_bits": self.naive_entropy_bits,
            "parameters": self.parameters,
            "mapping_version": self.mapping_version,
        }


@dataclass(frozen=True)
class IssuedCertificate:
    """The answer to ``POST /api/generate-certificate``."""

    cert_id: str
    cert_url: str
    token: str
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    issued_at: datetime
    expires_at: datetime
    kid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "token": self.token,
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
        }


@dataclass(frozen=True)
class CertificateRecord:
    """A stored certificate with its current status (public data only)."""

    cert_id: str
    cert_url: str
    status: str
    revoked_at: datetime | None
    revocation_reason: str | None
    issued_at: datetime
    expires_at: datetime
    compliance_standard: str
    standards_met: tuple[str, ...]
    entropy_bits: float
    naive_entropy_bits: float | None
    parameters: dict[str, Any]
    entropy_source: dict[str, Any]
    label: str | None
    target: dict[str, Any] | None
    token: str
    kid: str
    issuer: str
    subject: str
    mapping_version: str
    credential_commitment: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cert_id": self.cert_id,
            "cert_url": self.cert_url,
            "status": self.status,
            "revoked_at": _iso(self.revoked_at),
            "revocation_reason": self.revocation_reason,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "compliance_standard": self.compliance_standard,
            "standards_met": list(self.standards_met),
            "entropy_bits": self.entropy_bits,
            "parameters": self.parameters,
            "entropy_source": self.entropy_source,
            "label": self.label,
            "target": self.target,
            "token": self.token,
            "kid": self.kid,
        }


@dataclass(frozen=True)
class AuditPage:
    items: list[CertificateRecord]
    page: int
    page_size: int
    total: int
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [item.to_dict() for item in self.items],
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "anomalies": self.anomalies,
        }


# --- the service -------------------------------------------------------------------


class AuthorityService:
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
        self._jws = JWSBuilder(self.signer)
        self._active: tuple[str, str, float] | None = None  # kid, signer_ref, loaded (monotonic)
        self._lock = threading.Lock()
        self._purge_counter = 0
        try:
            self.engine: Engine = make_engine(settings.effective_database_url)
            with startup_lock(self.engine) as conn:
                if settings.migrate_on_start:
                    run_migrations(conn)
                secret = self._bootstrap(conn)
        except SQLAlchemyError as exc:
            raise AuthorityUnavailable(
                f"database {redact_url(settings.effective_database_url)} is unavailable: "
                f"{type(exc).__name__}"
            ) from None
        self._sessions = SessionCodec(secret)
        # SQLite file: writers serialise on a lock (thread + flock) and the hot
        # paths share commits through the group committer (one sync per group).
        self._write_lock: WriteLock | None = None
        self._committer: GroupCommitter | None = None
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            self._write_lock = WriteLock(database)
            self._committer = GroupCommitter(
                self.engine,
                self._write_lock,
                self._group_failed,
                on_rollback=self._rolled_back,
                sync_in_loop=settings.wal_sync_in_loop,
            )
        elif self.engine.dialect.name == "postgresql":
            # Every issuing request updates the same few rows (the key's rate
            # buckets, the status-list counter) and holds their locks until its
            # commit is flushed: grouping turns one flush per request into one
            # per group. PostgreSQL itself serialises writers across processes.
            self._committer = GroupCommitter(
                self.engine, None, self._group_failed, on_rollback=self._rolled_back
            )
        # user id -> time of its latest anomaly event (skips the 24 h count).
        self._anomaly_seen: dict[str, datetime] = {}
        # kid -> the signing_keys.last_expires_at this process committed (see _note_expiry).
        self._expiry_bounds: dict[str, datetime] = {}
        # Reads of committed rows on the issuance paths (no pool round trip).
        self._readers = _hot.Readers(self.engine)
        # Key rows until the next revocation by any process (SQLite: one host).
        self._key_rows = _hot.KeyRows(
            f"{database}.key-revocations" if self._write_lock is not None else None
        )
        # Rate-limit tokens leased by this process (see _ratelimit.Leases).
        self._leases = _ratelimit.Leases()
        # canonical generation body -> (request, digest, stored JSON): validated once.
        self._validated = _LRU(_CACHE_SIZE)
        # digest -> re-validated request (content-addressed, so never stale).
        self._requests = _LRU(_CACHE_SIZE)
        # Digests known to be committed in generation_requests (added after the commit).
        self._persisted: set[str] = set()
        # Claims templates of recent (user, request, second) (see _template).
        self._templates = _LRU(64)
        # Usage events queued for the next group commit (see _record_later).
        self._later: list[dict[str, Any]] = []
        self._later_tasks: set[asyncio.Task[int]] = set()

    def __repr__(self) -> str:
        return f"AuthorityService(settings={self.settings!r})"

    def __enter__(self) -> AuthorityService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._committer is not None:
            if self._later:
                with contextlib.suppress(Exception), self._tx() as conn:
                    self._flush_later(conn)
            self._committer.close()
        if self._write_lock is not None:
            self._write_lock.close()
        self._readers.close()
        self.engine.dispose()

    # -- infrastructure ------------------------------------------------------------

    def now(self) -> datetime:
        value = self.settings.clock()
        if value.tzinfo is None:
            raise ValueError("the authority clock must return timezone-aware datetimes")
        return value.astimezone(UTC)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction; database failures become AuthorityUnavailable (503)."""
        held = self._write_lock.held() if self._write_lock is not None else contextlib.nullcontext()
        state: _hot.TxnState | None = None
        try:
            with held, self.engine.begin() as conn:
                _hot.begin_txn(conn)
                try:
                    yield conn
                except BaseException:
                    _hot.end_txn(conn)
                    self._rolled_back()
                    raise
                state = _hot.end_txn(conn)
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            # The driver's own errors too: the hot path runs on the driver (see _hot).
            log.warning("database error: %s", type(exc).__name__)
            raise _db_unavailable(exc) from None
        if state is not None:
            state.committed()

    def _rolled_back(self) -> None:
        """A write transaction rolled back: forget what this process read inside it
        (it may have seen rows that were never committed). Leases and stored
        requests need nothing: they are remembered only after a commit."""
        self._anomaly_seen.clear()

    def _group_failed(self, exc: Exception) -> AuthorityUnavailable:
        self._rolled_back()
        return _db_unavailable(exc)

    def _bootstrap(self, conn: Connection) -> bytes:
        now = self.now()
        row = conn.execute(
            select(authority_meta.c.value).where(authority_meta.c.name == _SESSION_SECRET_ROW)
        ).first()
        if row is None:
            secret = secrets.token_bytes(32)
            conn.execute(
                insert(authority_meta).values(name=_SESSION_SECRET_ROW, value=secret.hex())
            )
        else:
            secret = bytes.fromhex(row[0])
        active = conn.execute(
            select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None))
        ).first()
        if active is None:
            self._add_key(conn, self.signer.create_key(), now)
        conn.commit()
        return secret

    def _add_key(self, conn: Connection, new: NewKey, now: datetime) -> None:
        conn.execute(
            update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=now)
        )
        conn.execute(
            insert(signing_keys).values(
                kid=new.kid,
                public_jwk=json.dumps(new.public_jwk, separators=(",", ":")),
                signer_ref=new.signer_ref,
                created_at=now,
                retired_at=None,
            )
        )
        log.info("signing key %s is now active", new.kid)

    def _active_key(self, conn: Connection) -> tuple[str, str]:
        cached = self._active
        if cached is not None and time.monotonic() - cached[2] < self.settings.key_cache_seconds:
            return cached[0], cached[1]
        row = conn.execute(
            select(signing_keys.c.kid, signing_keys.c.signer_ref)
            .where(signing_keys.c.retired_at.is_(None))
            .order_by(signing_keys.c.created_at.desc())
        ).first()
        if row is None:
            raise AuthorityError("the authority has no active signing key")
        self._active = (row.kid, row.signer_ref, time.monotonic())
        return row.kid, row.signer_ref

    def _event_row(
        self,
        kind: str,
        *,
        user_id: str | None,
        ip: str | None,
        now: datetime,
        detail: Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """A ``usage_events`` row; ``detail`` as a mapping, or already as JSON."""
        return {
            "kind": kind,
            "user_id": user_id,
            "ip": ip,
            "at": _hot.dt_for(self.engine.dialect.name, now),
            "detail": detail if isinstance(detail, str) or not detail else _detail_json(detail),
        }

    def _event(
        self,
        conn: Connection,
        kind: str,
        *,
        user_id: str | None,
        ip: str | None,
        now: datetime,
        detail: Mapping[str, Any] | str | None = None,
    ) -> None:
        row = self._event_row(kind, user_id=user_id, ip=ip, now=now, detail=detail)
        if kind == "anomaly":
            # Read back by later requests of the same group commit (_check_anomaly).
            _hot.execute(conn, _INSERT_EVENT, row)
        else:
            # Same transaction, written with the group's other events at commit.
            _hot.defer(conn, _INSERT_EVENT, row)

    # -- users and API keys --------------------------------------------------------

    def create_api_key(
        self, user: str, *, team: str | None = None, rate_limit: int | None = None
    ) -> CreatedApiKey:
        """Create a key for ``user`` (created if new); with ``team`` it is a team key.

        Raises:
            InvalidRequest: a malformed user/team name, a non-positive rate
                limit, or the user already belongs to another team.
            AuthorityUnavailable: the database failed.
        """
        for what, name in (("user", user), ("team", team)):
            if name is not None and not _NAME_RE.match(name):
                raise InvalidRequest(
                    f"{what} name must be 1-64 characters of letters, digits and ._@+-"
                )
        if rate_limit is not None and (
            isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 1
        ):
            raise InvalidRequest("rate_limit must be a positive number of requests per minute")
        now = self.now()
        prefix = _b32(5)
        key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        with self._tx() as conn:
            if (
                team is not None
                and conn.execute(select(teams.c.id).where(teams.c.id == team)).first() is None
            ):
                conn.execute(insert(teams).values(id=team, created_at=now))
            existing = conn.execute(select(users.c.team_id).where(users.c.id == user)).first()
            if existing is None:
                conn.execute(insert(users).values(id=user, team_id=team, created_at=now))
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
                    created_at=now,
                )
            )
        log.info("created API key %s for user %s", prefix, user)
        return CreatedApiKey(
            key=key,
            prefix=prefix,
            user_id=user,
            team_id=team,
            rate_limit=rate_limit,
            created_at=now,
        )

    def list_api_keys(self) -> list[ApiKeyInfo]:
        """Every key (revoked ones too), oldest first. Raises AuthorityUnavailable."""
        with self._tx() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
        return [self._key_info(row) for row in rows]

    @staticmethod
    def _key_info(row: RowMapping) -> ApiKeyInfo:
        return ApiKeyInfo(
            prefix=row["prefix"],
            user_id=row["user_id"],
            team_id=row["team_id"],
            rate_limit=row["rate_limit"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )

    def lookup_api_key(self, api_key: str) -> ApiKeyInfo | None:
        """The key's record if ``api_key`` is a known key (revoked or not), else None.

        No rate limit and no usage event: for local tooling (the embedded
        authority checking its stored key). Raises AuthorityUnavailable.
        """
        with self._tx() as conn:
            row = (
                conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_api_key(api_key)))
                .mappings()
                .first()
            )
        return None if row is None else self._key_info(row)

    def revoke_api_key(self, prefix: str) -> ApiKeyInfo:
        """Revoke the key with this public prefix (idempotent).

        Raises:
            NotFound: no key has this prefix.
            AuthorityUnavailable: the database failed.
        """
        prefix = prefix.removeprefix(f"{KEY_PREFIX}_").split("_")[0]
        with self._tx() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self.now())
            )
            row = (
                conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).mappings().first()
            )
        if row is None:
            raise NotFound(f"no API key with prefix {prefix[:16]!r}")
        try:
            self._key_rows.revoked()
        except OSError as exc:
            # Committed, but processes caching the key would not know: say so.
            # Revoking again (idempotent) sends the signal again.
            raise AuthorityUnavailable(
                f"API key {prefix} is revoked in the database, but the running "
                f"authority processes could not be told ({exc.strerror or exc}); "
                "revoke it again or restart them"
            ) from None
        log.info("revoked API key %s", prefix)
        return self._key_info(row)

    # -- authentication and request limits -----------------------------------------

    def _check_key_format(self, api_key: str | None) -> str:
        """The key's public prefix. Raises Unauthenticated (no database access)."""
        if not api_key:
            raise Unauthenticated("an API key is required: Authorization: Bearer <key>")
        parts = api_key.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not _PREFIX_RE.match(parts[1]):
            raise Unauthenticated("the API key is malformed")
        return parts[1]

    def _authorize_in(
        self,
        conn: Connection,
        api_key: str,
        prefix: str,
        *,
        ip: str | None,
        endpoint: str,
        now: datetime,
    ) -> tuple[Principal | None, float | None]:
        """Look the key up, apply the per-user limits and record the access, in ``conn``.

        Returns ``(None, None)`` for an unknown or revoked key, else the
        principal and ``None`` (admitted) or the seconds until a retry.
        """
        ts = now.timestamp()
        retry: float | None = None
        key_hash = hash_api_key(api_key)
        row = self._key_rows.get(key_hash)
        if row is None:
            # Without the process cache (PostgreSQL), once per group commit.
            memo = _hot.memo(conn)
            cache_key = ("api_key", key_hash)
            if memo is not None and cache_key in memo:
                row = memo[cache_key]
            else:
                row = _hot.execute(conn, _KEY_LOOKUP, {"key_hash": key_hash}).fetchone()
                if memo is not None:
                    memo[cache_key] = row
            self._key_rows.put(key_hash, row)
        if row is None or row[0] != prefix or row[4] is not None:
            return None, None
        principal = Principal(user_id=row[1], team_id=row[2], key_prefix=row[0], rate_limit=row[3])
        bucket, per_minute, burst, rate = self._limits_of(principal)
        leases = self._leases
        if burst is not None:
            retry = _ratelimit.leased_gcra(conn, leases, bucket, burst, rate, ts)
        if retry is None and per_minute is not None:
            retry = _ratelimit.leased_window(conn, leases, bucket, per_minute, 60.0, ts)
        self._event(
            conn,
            "api_access" if retry is None else "rate_limited",
            user_id=principal.user_id,
            ip=ip,
            now=now,
            detail=_access_detail(endpoint, principal.key_prefix),
        )
        self._purge_counter += 1
        if self._purge_counter % 500 == 0:
            _ratelimit.purge_expired(conn, ts)
        return principal, retry

    def _limits_of(self, principal: Principal) -> tuple[str, int | None, int | None, float]:
        """``(bucket, per minute, burst, refill per second)`` of a caller."""
        limits = self.settings.rate_limits
        if principal.rate_limit is not None:
            # Automation key: its own budget, burst as large as a minute's worth.
            return (
                f"key:{principal.key_prefix}",
                principal.rate_limit,
                principal.rate_limit,
                max(limits.refill_per_second, principal.rate_limit / 60.0),
            )
        return (
            f"user:{principal.user_id}",
            limits.user_per_minute,
            limits.burst,
            limits.refill_per_second,
        )

    def _admitted_without_write(self, api_key: str | None, now: datetime) -> Principal | None:
        """The caller if it can be admitted with no write at all, else ``None``.

        That is: a valid, unrevoked automation key (read from committed
        state, so a revocation applies at once) whose every rate limit has
        tokens left in a lease this process holds (see ``_ratelimit``).
        ``None`` sends the request down the ordinary path, which decides
        (and records) everything in one transaction.
        """
        if self._committer is None or not api_key:
            return None
        try:
            prefix = self._check_key_format(api_key)
        except PassgeniError:
            return None
        key_hash = hash_api_key(api_key)
        row = self._key_rows.get(key_hash)
        if row is None:
            rows = self._readers.read(_KEY_LOOKUP, {"key_hash": key_hash})
            row = tuple(rows[0]) if rows else None
            self._key_rows.put(key_hash, row)
        if row is None or row[0] != prefix or row[4] is not None or row[3] is None:
            return None
        principal = Principal(user_id=row[1], team_id=row[2], key_prefix=row[0], rate_limit=row[3])
        bucket, per_minute, burst, _rate = self._limits_of(principal)
        ts = now.timestamp()
        if burst is not None and not _ratelimit.take_leased(self._leases, bucket, ts):
            return None
        if per_minute is not None and not _ratelimit.take_leased(
            self._leases, bucket, ts, period=60.0
        ):
            return None
        return principal

    def _record_later(self, row: dict[str, Any]) -> None:  # on the event loop
        """Queue a usage event for the next group commit, without waiting for it.

        For requests that write nothing else (opening sessions on the fast
        path): their access is recorded in the next commit, a few
        milliseconds later. A crash in between loses those events (never a
        certificate: issuance always waits for its commit).
        """
        assert self._committer is not None
        with self._lock:
            self._later.append(row)
            first = len(self._later) == 1
        if first:
            # Kept referenced until done (the loop holds tasks only weakly).
            task = asyncio.get_running_loop().create_task(
                self._committer.run_async(self._flush_later)
            )
            self._later_tasks.add(task)
            task.add_done_callback(self._later_done)

    def _flush_later(self, conn: Connection) -> int:
        with self._lock:
            rows, self._later = self._later, []
        for row in rows:
            _hot.defer(conn, _INSERT_EVENT, row)
        return len(rows)

    async def wait_for_queued_events(self) -> None:
        """Wait until every usage event queued by :meth:`_record_later` is committed.

        For a clean shutdown (the app's lifespan): the event loop cancels
        whatever is still pending when it stops.
        """
        while self._later_tasks:
            await asyncio.gather(*list(self._later_tasks), return_exceptions=True)

    def _later_done(self, task: asyncio.Task[int]) -> None:
        self._later_tasks.discard(task)
        if task.cancelled() or task.exception() is not None:
            log.warning("usage events of opened sessions were not recorded: the commit failed")

    async def open_sessions(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        body: Mapping[str, Any] | PassgeniError,
        count: int | PassgeniError,
        generation_attempts: int,
    ) -> GenerationBatch:
        """``POST /api/generate`` and ``/api/generate-batch``: authorise, rate-limit,
        validate the request and open ``count`` sessions, without waiting for a
        commit when nothing but the access event would be written.

        Opening sessions stores nothing per session (tokens are stateless),
        so for an automation key admitted from its rate-limit leases, and a
        request this process has already stored, the answer needs no write:
        the access event is queued (:meth:`_record_later`). Every other case
        (errors included) takes the ordinary path, with the same answers.
        """
        now = self.now()
        principal = self._admitted_without_write(api_key, now)
        if (
            principal is not None
            and not isinstance(body, PassgeniError)
            and isinstance(count, int)
            and 1 <= count <= self.settings.max_batch_items
        ):
            try:
                validated = self._validated_request(body)
            except PassgeniError:
                validated = None  # answered, and recorded, by the ordinary path
            if validated is not None and validated[1] in self._persisted:
                self._record_later(
                    self._event_row(
                        "api_access",
                        user_id=principal.user_id,
                        ip=ip,
                        now=now,
                        detail=_access_detail(endpoint, principal.key_prefix),
                    )
                )
                return self._sessions_for(principal, validated, count, now)
        return await self._authorized(
            api_key,
            ip=ip,
            endpoint=endpoint,
            work=self._generation_batch_work(body, count),
            generation_attempts=generation_attempts,
        )

    @staticmethod
    def _user_limited(principal: Principal, retry: float) -> RateLimited:
        return RateLimited(
            f"too many requests for user {principal.user_id}; retry in "
            f"{_ratelimit.retry_after_header(retry)} s",
            retry_after=retry,
        )

    def authorize(self, api_key: str | None, *, ip: str | None, endpoint: str) -> Principal:
        """Authenticate a request, apply the per-user limits and record the access.

        Raises:
            Unauthenticated: no key, a malformed, unknown or revoked key.
            RateLimited: the per-user minute window or the burst bucket is
                exhausted (``retry_after`` set).
            AuthorityUnavailable: the database failed.
        """
        prefix = self._check_key_format(api_key)
        assert api_key is not None
        now = self.now()
        with self._tx() as conn:
            principal, retry = self._authorize_in(
                conn, api_key, prefix, ip=ip, endpoint=endpoint, now=now
            )
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if retry is not None:
            raise self._user_limited(principal, retry)
        return principal

    async def _authorized(
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
        unit = self._authorized_unit(
            api_key, ip=ip, endpoint=endpoint, work=work, generation_attempts=generation_attempts
        )
        try:
            outcome = await self._write(unit)
        except _WorkFailed as failed:
            retry_unit = self._authorized_unit(
                api_key,
                ip=ip,
                endpoint=endpoint,
                work=None,
                generation_attempts=generation_attempts,
            )
            self._authorized_result(await self._write(retry_unit))
            raise failed.error from None
        value: _T = self._authorized_result(outcome)
        return value

    async def _write(self, unit: Callable[[Connection], _T]) -> _T:
        """Run ``unit`` in a transaction that is committed before this returns.

        With a group committer the unit joins the current group commit (its
        own savepoint, one shared commit); elsewhere it gets its own
        transaction in a worker thread. Raises what the unit raises, or
        AuthorityUnavailable.
        """
        if self._committer is not None:
            return await self._committer.run_async(unit)
        return await asyncio.to_thread(self._in_tx, unit)

    def _in_tx(self, unit: Callable[[Connection], _T]) -> _T:
        with self._tx() as conn:
            return unit(conn)

    def _authorized_unit(
        self,
        api_key: str | None,
        *,
        ip: str | None,
        endpoint: str,
        work: Callable[[Connection, Principal], Any] | None,
        generation_attempts: int,
    ) -> Callable[[Connection], tuple[Principal | None, PassgeniError | None, Any]]:
        """The unit of :meth:`_authorized`: bookkeeping then ``work`` (``None``:
        bookkeeping only). ``work``'s error is raised as :class:`_WorkFailed`,
        so the whole unit (bookkeeping included) rolls back: one savepoint per
        request instead of two on the success path."""
        prefix = self._check_key_format(api_key)
        assert api_key is not None
        now = self.now()
        gen_limit = self.settings.rate_limits.generation_per_ip_per_hour

        def unit(conn: Connection) -> tuple[Principal | None, PassgeniError | None, Any]:
            principal, retry = self._authorize_in(
                conn, api_key, prefix, ip=ip, endpoint=endpoint, now=now
            )
            if principal is None:
                return None, None, None
            if retry is not None:
                return principal, self._user_limited(principal, retry), None
            if generation_attempts and gen_limit is not None and principal.rate_limit is None:
                # Counted before validation: a failed attempt is still an attempt.
                gen_retry = _ratelimit.window(
                    conn,
                    f"gen-ip:{ip or 'unknown'}",
                    gen_limit,
                    3600.0,
                    now.timestamp(),
                    amount=generation_attempts,
                )
                if gen_retry is not None:
                    return principal, self._ip_limited(gen_limit, gen_retry), None
            if work is None:
                return principal, None, None
            try:
                return principal, None, work(conn, principal)
            except PassgeniError as exc:
                raise _WorkFailed(exc) from None

        return unit

    @staticmethod
    def _authorized_result(outcome: tuple[Principal | None, PassgeniError | None, Any]) -> Any:
        principal, error, result = outcome
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if error is not None:
            raise error
        return result

    @staticmethod
    def _ip_limited(limit: int, retry: float) -> RateLimited:
        return RateLimited(
            f"at most {limit} certificate generation attempts per IP address per hour; "
            f"retry in {_ratelimit.retry_after_header(retry)} s",
            retry_after=retry,
        )

    # -- generation sessions -------------------------------------------------------

    def _generation_batch_work(
        self, body: Mapping[str, Any] | PassgeniError, count: int | PassgeniError
    ) -> Callable[[Connection, Principal], GenerationBatch]:
        """Validate a generation request now; the returned work opens ``count``
        sessions with its parameters (validated once, sessions are tokens).

        Validation errors (or ``body`` itself when it is an error, e.g.
        unparsable JSON) are raised by the work, so they come after
        authentication and rate limits, as over HTTP.
        """
        error: PassgeniError | None = None
        validated: tuple[dict[str, Any], str, str] | None = None
        try:
            if isinstance(body, PassgeniError):
                raise body
            if isinstance(count, PassgeniError):
                raise count
            if not 1 <= count <= self.settings.max_batch_items:
                raise InvalidRequest(f"count must be 1-{self.settings.max_batch_items}")
            validated = self._validated_request(body)
        except PassgeniError as exc:
            error = exc
        now = self.now()

        def work(conn: Connection, principal: Principal) -> GenerationBatch:
            if error is not None:
                raise error
            assert validated is not None and not isinstance(count, PassgeniError)
            return self._open_sessions(conn, principal, validated, count, now)

        return work

    def _validated_request(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
        """``(request, digest, stored JSON)`` of a generation body.

        Validation is deterministic, so a body already seen by this process
        is not validated again (bulk rotation repeats one body thousands of
        times). Raises what :meth:`_validate_generation` raises.
        """
        try:
            key: str | None = json.dumps(body, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            key = None  # not JSON data (a Python caller): validate, don't cache
        hit: tuple[dict[str, Any], str, str] | None = (
            None if key is None else self._validated.get(key)
        )
        if hit is not None:
            return hit
        request = self._validate_generation(body)
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

    def _open_sessions(
        self,
        conn: Connection,
        principal: Principal,
        validated: tuple[dict[str, Any], str, str],
        count: int,
        now: datetime,
    ) -> GenerationBatch:
        _request, digest, stored = validated
        if digest not in self._persisted:
            # Once per distinct request, committed before any of its sessions
            # is answered, so every process can redeem them.
            _hot.execute(
                conn,
                _INSERT_REQUEST,
                {"digest": digest, "request": stored, "created_at": _hot.dt(conn, now)},
            )
            _hot.after_commit(conn, lambda: self._persisted.add(digest))
        return self._sessions_for(principal, validated, count, now)

    def _sessions_for(
        self,
        principal: Principal,
        validated: tuple[dict[str, Any], str, str],
        count: int,
        now: datetime,
    ) -> GenerationBatch:
        request, digest, _stored = validated
        iat = int(now.timestamp())
        exp = iat + self.settings.session_lifetime_seconds
        encode = self._sessions.encode
        user_id = principal.user_id
        return GenerationBatch(
            generation_session_ids=[
                encode(SessionClaims(jti=_ordered_id(), sub=user_id, iat=iat, exp=exp, rq=digest))
                for _ in range(count)
            ],
            expires_in=self.settings.session_lifetime_seconds,
            compliance_standard=request["compliance_standard"],
            standards_met=tuple(request["standards_met"]),
            entropy_bits=request["entropy_bits"],
            naive_entropy_bits=request["naive_entropy_bits"],
            parameters=request["parameters"],
            mapping_version=request["mapping_version"],
        )

    def _request_for(self, digest: str, conn: Connection | None = None) -> dict[str, Any]:
        """The re-validated request a session token refers to.

        Raises:
            SessionInvalid: no such request (a token from before migration
                0003, or from another authority sharing the secret but not
                the database).
        """
        request: dict[str, Any] | None = self._requests.get(digest)
        if request is not None:
            return request
        params = {"digest": digest}
        rows = (
            _hot.execute(conn, _REQUEST_BY_DIGEST, params).fetchall()
            if conn is not None
            else self._readers.read(_REQUEST_BY_DIGEST, params)
        )
        if not rows:
            raise SessionInvalid("generation session is unknown to this authority")
        request = json.loads(rows[0][0])
        assert isinstance(request, dict)
        self._requests.put(digest, request)
        return request

    def _validate_generation(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if "password" in body:
            raise InvalidRequest(
                "the authority never accepts a password: send only the generation parameters"
            )
        unknown = sorted(str(k)[:40] for k in body if k not in _GENERATE_FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        standard = body.get("compliance_standard")
        alias = body.get("preset")
        if standard is not None and alias is not None and standard != alias:
            raise InvalidRequest("compliance_standard and preset differ; send one of them")
        standard = standard if standard is not None else alias
        if not isinstance(standard, str) or not standard:
            raise InvalidRequest("compliance_standard (or preset) is required")
        preset = get_preset(standard)
        raw_params = body.get("parameters")
        params = (
            GenerationParameters.for_preset(preset)
            if raw_params is None
            else GenerationParameters.from_dict(raw_params)
        )
        raw_source = body.get("entropy_source")
        source = EntropySource() if raw_source is None else EntropySource.from_dict(raw_source)
        strict = self.settings.fips_strict
        check_preset(preset, params, entropy_source=source, fips_strict=strict)
        report = entropy_report(params)
        return {
            "compliance_standard": preset.id,
            "parameters": params.to_dict(),
            "entropy_source": source.to_dict(),
            "standards_met": standards_met(params, entropy_source=source, fips_strict=strict),
            "entropy_bits": report.bits,
            "naive_entropy_bits": report.naive_bits,
            "mapping_version": MAPPING_VERSION,
        }

    # -- certificates --------------------------------------------------------------

    async def issue_certificate(
        self,
        api_key: str | None,
        body: Mapping[str, Any] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> IssuedCertificate:
        """``POST /api/generate-certificate``: authorise, rate-limit, then redeem a
        session (once) and sign its certificate, in one transaction committed
        before this returns. Nothing is signed for a caller that is not
        admitted. ``body`` may be the error parsing it gave (raised after
        authentication and rate limits, as over HTTP).

        Raises:
            Unauthenticated / RateLimited: as :meth:`authorize`.
            InvalidRequest: unknown fields, a malformed commitment, target or label.
            SessionInvalid: forged, malformed, unknown or another tenant's session.
            SessionExpired: the session is older than its lifetime.
            SessionAlreadyUsed: the session was already redeemed.
            AuthorityError / AuthorityUnavailable: signing or the database failed.
        """
        now = self.now()

        def work(conn: Connection, principal: Principal) -> IssuedCertificate:
            if isinstance(body, PassgeniError):
                raise body
            result = self._issue_in(conn, principal, [body], ip=ip, batch=False, now=now)[0]
            if isinstance(result, PassgeniError):
                raise result
            return result

        return await self._authorized(api_key, ip=ip, endpoint=endpoint, work=work)

    async def issue_certificates(
        self,
        api_key: str | None,
        items: Sequence[object] | PassgeniError,
        *,
        ip: str | None,
        endpoint: str,
    ) -> list[IssuedCertificate | PassgeniError]:
        """``POST /api/generate-certificates``: :meth:`issue_certificate` for many
        sessions, one result per item, in order (an error per failed item).

        Raises:
            Unauthenticated / RateLimited: as :meth:`authorize`.
            InvalidRequest: ``items`` is empty or has more than ``max_batch_items``.
            AuthorityError / AuthorityUnavailable: signing or the database failed.
        """
        now = self.now()

        def work(conn: Connection, principal: Principal) -> list[IssuedCertificate | PassgeniError]:
            if isinstance(items, PassgeniError):
                raise items
            self._check_batch(items)
            return self._issue_in(conn, principal, items, ip=ip, batch=True, now=now)

        return await self._authorized(api_key, ip=ip, endpoint=endpoint, work=work)

    def _check_batch(self, items: Sequence[object]) -> None:
        if not items:
            raise InvalidRequest("items must be a non-empty list")
        if len(items) > self.settings.max_batch_items:
            raise InvalidRequest(f"at most {self.settings.max_batch_items} items per batch")

    def _parse_redeem(
        self, principal: Principal, body: object, now: datetime
    ) -> tuple[SessionClaims, str | None, Target | None, str | None]:
        if not isinstance(body, Mapping):
            raise InvalidRequest("each item must be a JSON object")
        unknown = (
            ()
            if body.keys() <= _REDEEM_FIELDS
            else sorted(str(k)[:40] for k in body if k not in _REDEEM_FIELDS)
        )
        if unknown:
            raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
        if "generation_session_id" not in body:
            raise InvalidRequest("generation_session_id is required")
        claims = self._sessions.decode(body["generation_session_id"])
        if claims.sub != principal.user_id:
            # Same answer as a forgery: no oracle for other tenants' sessions.
            raise SessionInvalid("generation_session_id was not issued to this caller")
        if now.timestamp() >= claims.exp:
            raise SessionExpired(
                f"the generation session expired {int(now.timestamp() - claims.exp)} s ago "
                f"(sessions last {self.settings.session_lifetime_seconds} s)"
            )
        commitment = body.get("credential_commitment")
        if commitment is not None and (
            not isinstance(commitment, str) or not _COMMITMENT_RE.match(commitment)
        ):
            raise InvalidRequest("credential_commitment must be 43 base64url characters")
        target = None if body.get("target") is None else Target.from_dict(body["target"])
        if target is not None and not all(
            _encodable(v) for v in (target.system, target.path, target.version)
        ):
            raise InvalidRequest("target fields must be valid Unicode text (no lone surrogates)")
        label = body.get("label")
        if label is not None and (
            not isinstance(label, str) or not 1 <= len(label) <= 200 or not label.isprintable()
        ):
            raise InvalidRequest("label must be 1-200 printable characters")
        return claims, commitment, target, label

    def _parse_all(
        self, principal: Principal, items: Sequence[object], now: datetime, *, batch: bool
    ) -> list[_Parsed | PassgeniError]:
        parsed: list[_Parsed | PassgeniError] = []
        for item in items:
            try:
                parsed.append(self._parse_redeem(principal, item, now))
            except PassgeniError as exc:
                if not batch:
                    raise
                parsed.append(exc)
        return parsed

    def _template(
        self, dialect: str, user_id: str, digest: str, request: dict[str, Any], issued_at: datetime
    ) -> _CertTemplate:
        """The shared part of the certificates of ``user_id`` for ``request`` issued
        at ``issued_at``: built once through :class:`CertificateClaims` (which
        checks and orders the claims), then reused for every such certificate."""
        key = (dialect, user_id, digest, issued_at)  # the digest names the request
        cached: _CertTemplate | None = self._templates.get(key)
        if cached is not None:
            return cached
        claims = CertificateClaims.build(
            issuer=self.settings.public_url,
            subject=user_id,
            cert_id="pg_" + "a" * 24,
            compliance_standard=request["compliance_standard"],
            standards_met=request["standards_met"],
            entropy_bits=request["entropy_bits"],
            naive_entropy_bits=request["naive_entropy_bits"],
            parameters=request["parameters"],
            entropy_source=request["entropy_source"],
            mapping_version=request["mapping_version"],
            issued_at=issued_at,
        )
        common = claims.to_payload()
        del common["jti"]  # per certificate, with the optional claims (see _sign_entry)
        body = json.dumps(common, separators=(",", ":"), ensure_ascii=False)
        template = _CertTemplate(
            prefix=(body[:-1] + ",").encode("utf-8"),
            compliance_standard=claims.compliance_standard,
            standards_met=claims.standards_met,
            standards_column="," + ",".join(claims.standards_met) + ",",
            entropy_bits=claims.entropy_bits,
            issued_at=claims.issued_at,
            expires_at=claims.expires_at,
            issued_at_db=_hot.dt_for(dialect, claims.issued_at),
            expires_at_db=_hot.dt_for(dialect, claims.expires_at),
        )
        self._templates.put(key, template)
        return template

    def _sign_entry(
        self,
        dialect: str,
        user_id: str,
        kid: str,
        signer_ref: str,
        entry: _Parsed,
        request: dict[str, Any],
        status_idx: int,
        issued_at: datetime,
        now_db: Any,
        ip: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any], IssuedCertificate]:
        """One certificate: claims, signature, its row and its usage event (stored form).

        The claims are the request's template (:meth:`_template`) followed by
        this certificate's own: ``jti``, the optional commitment, target and
        label, and its status-list reference. The row's ``team_id`` is set
        by the transaction that stores it. ``now_db`` is the request's time
        as the database stores it (the usage event's)."""
        claims, commitment, target, label = entry
        template = self._template(dialect, user_id, claims.rq, request, issued_at)
        cert_id = f"pg_{_ordered_id()}"
        own: dict[str, Any] = {"jti": cert_id}
        if commitment is not None:
            own["credential_commitment"] = commitment
        if target is not None:
            own["target"] = target.to_dict()
        if label is not None:
            own["label"] = label
        own["status"] = _status.status_reference(self, status_idx).to_dict()
        # Serialised once, straight into the signed bytes (the stored claims are
        # the token's). orjson: compact UTF-8 like the template, 1 us against 6.
        token = self._jws.token_for_body(kid, signer_ref, template.prefix + orjson.dumps(own)[1:])
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
        issued = IssuedCertificate(
            cert_id=cert_id,
            cert_url=self.cert_url(cert_id),
            token=token,
            compliance_standard=template.compliance_standard,
            standards_met=template.standards_met,
            entropy_bits=template.entropy_bits,
            issued_at=template.issued_at,
            expires_at=template.expires_at,
            kid=kid,
        )
        return row, event, issued

    def _issue_in(
        self,
        conn: Connection,
        principal: Principal,
        items: Sequence[object],
        *,
        ip: str | None,
        batch: bool,
        now: datetime,
    ) -> list[IssuedCertificate | PassgeniError]:
        """Redeem and sign in ``conn`` (the request is already authorised and
        admitted by its rate limits); the caller commits before returning any id.
        The certificate insert is the single-use gate."""
        memo = _hot.memo(conn)
        cache_key = ("team", principal.user_id)
        if memo is not None and cache_key in memo:
            team_id = memo[cache_key]
        else:
            team_row = _hot.execute(conn, _USER_TEAM, {"user_id": principal.user_id}).fetchone()
            team_id = None if team_row is None else team_row[0]
            if memo is not None:
                memo[cache_key] = team_id
        kid, signer_ref = self._active_key(conn)
        parsed = self._parse_all(principal, items, now, batch=batch)
        issued_at = datetime.fromtimestamp(int(now.timestamp()), UTC)
        results: list[IssuedCertificate | PassgeniError | None] = []
        pending: list[tuple[int, tuple[dict[str, Any], dict[str, Any], IssuedCertificate]]] = []
        seen: set[str] = set()
        next_idx: int | None = None
        for entry in parsed:
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
                request = self._request_for(entry[0].rq, conn)
            except PassgeniError as exc:
                results.append(exc)
                continue
            if next_idx is None:
                # Offline revocation: one status-list index per certificate (see _status).
                next_idx = _status.allocate_indexes(
                    conn, sum(1 for e in parsed if not isinstance(e, PassgeniError))
                )
            signed = self._sign_entry(
                conn.dialect.name,
                principal.user_id,
                kid,
                signer_ref,
                entry,
                request,
                next_idx,
                issued_at,
                _hot.dt(conn, now),
                ip,
            )
            next_idx += 1
            signed[0]["team_id"] = team_id
            pending.append((len(results), signed))
            results.append(None)
        redeemed = self._insert_certificates(conn, [row for _, (row, _e, _i) in pending])
        for position, (row, event, issued) in pending:
            if row["session_jti"] in redeemed:
                results[position] = issued
                _hot.defer(conn, _INSERT_EVENT, event)
            else:
                results[position] = _already_used()
        if redeemed:
            self._note_expiry(conn, kid, max(issued.expires_at for _p, (_r, _e, issued) in pending))
            self._check_anomaly(conn, principal.user_id, ip, now)
        final = [r for r in results if r is not None]
        assert len(final) == len(results)
        if not batch and isinstance(final[0], PassgeniError):
            raise final[0]
        # Nothing is returned to a client before the caller committed.
        return final

    @staticmethod
    def _insert_certificates(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Store certificates whose sessions are not redeemed yet; their session ids.

        The unique ``session_jti`` makes the insert the single-use gate, atomic
        in every backend and across processes: of two transactions racing for
        one session, the second inserts nothing for it (PostgreSQL waits for
        the first to commit or roll back), so each session yields at most one
        certificate however many processes race for it.
        """
        if conn.dialect.name == "sqlite":
            values = [tuple(row[c] for c in _CERT_COLUMNS) for row in rows]
            if _hot.executemany(conn, _INSERT_CERTIFICATE_SQLITE, values) == len(rows):
                return {row["session_jti"] for row in rows}
            # Some sessions were redeemed already. The rows that went in are the
            # ones whose cert ids (new, made by this request) are now stored.
            stored: set[str] = set()
            ids = [row["cert_id"] for row in rows]
            for start in range(0, len(ids), _INSERT_CHUNK):
                some = ids[start : start + _INSERT_CHUNK]
                marks = ", ".join("?" * len(some))
                found = _hot.execute(
                    conn,
                    f"SELECT cert_id FROM certificates WHERE cert_id IN ({marks})",  # noqa: S608
                    some,
                )
                stored.update(cert_id for (cert_id,) in found.fetchall())
            return {row["session_jti"] for row in rows if row["cert_id"] in stored}
        redeemed: set[str] = set()
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            params = {
                f"{column}{i}": row[column]
                for i, row in enumerate(chunk)
                for column in _CERT_COLUMNS
            }
            cursor = _hot.execute(conn, _insert_certificates_sql(len(chunk)), params)
            redeemed.update(jti for (jti,) in cursor.fetchall())
        return redeemed

    def _note_expiry(self, conn: Connection, kid: str, expires_at: datetime) -> None:
        """Raise ``kid``'s ``last_expires_at`` to cover a certificate expiring at
        ``expires_at`` (the JWKS keeps a retired key while it is in the future).

        The bound is written with :data:`LAST_EXPIRY_SLACK` to spare, so a
        process updates the key's row about once per slack period instead of
        once per commit; a retired key stays published that much longer at
        most (a public key: harmless).
        """
        bound = self._expiry_bounds.get(kid)
        if bound is not None and expires_at <= bound:
            return
        new_bound = expires_at + LAST_EXPIRY_SLACK
        _hot.execute(conn, _RAISE_LAST_EXPIRY, {"kid": kid, "bound": _hot.dt(conn, new_bound)})
        _hot.after_commit(conn, lambda: self._expiry_bounds.__setitem__(kid, new_bound))

    def _check_anomaly(self, conn: Connection, user_id: str, ip: str | None, now: datetime) -> None:
        since = now - timedelta(hours=24)
        # Already flagged in the last 24 h: nothing to count (a bulk rotation
        # would otherwise count its whole day's certificates on every request).
        seen = self._anomaly_seen.get(user_id)
        if seen is not None and seen > since:
            return
        params = {"user_id": user_id, "since": _hot.dt(conn, since)}
        already = _hot.execute(conn, _LATEST_ANOMALY, params).fetchone()
        if already is not None:
            self._anomaly_seen[user_id] = _hot.parse_dt(already[0])
            return
        count = int(_hot.execute(conn, _COUNT_24H, params).fetchone()[0])
        if count > self.settings.anomaly_threshold_24h:
            # Recorded, never blocking: bulk rotation is legitimate; an auditor decides.
            log.warning("anomaly: user %s issued %d certificates in 24 h", user_id, count)
            self._event(
                conn, "anomaly", user_id=user_id, ip=ip, now=now, detail={"count_24h": count}
            )

    def cert_url(self, cert_id: str) -> str:
        return f"{self.settings.public_url}/cert/{cert_id}"

    def _status(self, row: RowMapping, now: datetime) -> str:
        if row["status"] == "revoked":
            return "revoked"
        return "valid" if row["expires_at"] > now else "expired"

    def _record(self, row: RowMapping, now: datetime) -> CertificateRecord:
        payload = _token_claims(row["token"])
        return CertificateRecord(
            cert_id=row["cert_id"],
            cert_url=self.cert_url(row["cert_id"]),
            status=self._status(row, now),
            revoked_at=row["revoked_at"],
            revocation_reason=row["revocation_reason"],
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            compliance_standard=row["compliance_standard"],
            standards_met=tuple(payload.get("standards_met", ())),
            entropy_bits=payload["entropy_bits"],
            naive_entropy_bits=payload.get("naive_entropy_bits"),
            parameters=payload.get("parameters", {}),
            entropy_source=payload.get("entropy_source", {}),
            label=payload.get("label"),
            target=payload.get("target"),
            token=row["token"],
            kid=row["kid"],
            issuer=payload.get("iss", ""),
            subject=payload.get("sub", ""),
            mapping_version=payload.get("mapping_version", ""),
            credential_commitment=payload.get("credential_commitment"),
        )

    def get_certificate(self, cert_id: str, *, ip: str | None = None) -> CertificateRecord:
        """The public record of a certificate (no authentication); records a view.

        Raises:
            NotFound: no such certificate.
            AuthorityUnavailable: the database failed.
        """
        if not _CERT_ID_RE.match(cert_id):
            raise NotFound(f"no certificate {cert_id[:40]!r}")
        now = self.now()
        with self._tx() as conn:
            row = (
                conn.execute(select(certificates).where(certificates.c.cert_id == cert_id))
                .mappings()
                .first()
            )
            if row is not None:
                self._event(
                    conn,
                    "certificate_view",
                    user_id=None,
                    ip=ip,
                    now=now,
                    detail={"cert_id": cert_id},
                )
        if row is None:
            raise NotFound(f"no certificate {cert_id!r}")
        return self._record(row, now)

    def _scope(self, principal: Principal) -> Any:
        if principal.team_id is not None:
            return certificates.c.team_id == principal.team_id
        return certificates.c.owner_user_id == principal.user_id

    def revoke_certificate(
        self, principal: Principal, cert_id: str, reason: object
    ) -> CertificateRecord:
        """Mark a certificate revoked (the record stays; idempotent: the first
        revocation's time and reason are kept).

        Raises:
            InvalidRequest: the reason is not 1-500 characters.
            NotFound: no such certificate *for this caller* (another tenant's
                certificate answers the same, so existence is not revealed).
            AuthorityUnavailable: the database failed.
        """
        if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 500:
            raise InvalidRequest("reason must be a string of 1-500 characters")
        now = self.now()
        with self._tx() as conn:
            conn.execute(
                update(certificates)
                .where(
                    certificates.c.cert_id == cert_id,
                    self._scope(principal),
                    certificates.c.status != "revoked",
                )
                .values(status="revoked", revoked_at=now, revocation_reason=reason.strip())
            )
            row = (
                conn.execute(
                    select(certificates).where(
                        certificates.c.cert_id == cert_id, self._scope(principal)
                    )
                )
                .mappings()
                .first()
            )
            if row is not None:
                self._event(
                    conn,
                    "certificate_revoked",
                    user_id=principal.user_id,
                    ip=None,
                    now=now,
                    detail={"cert_id": cert_id},
                )
        if row is None:
            raise NotFound(f"no certificate {cert_id[:40]!r}")
        return self._record(row, now)

    def audit(
        self,
        principal: Principal,
        *,
        standard: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> AuditPage:
        """The caller's certificates (the team's for team keys), newest first.

        Raises:
            InvalidRequest: an unknown standard or status, bad paging, naive dates.
            AuthorityUnavailable: the database failed.
        """
        if standard is not None and standard not in {p.id for p in list_presets()}:
            raise InvalidRequest(f"unknown standard {standard[:40]!r}")
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(_STATUSES)}")
        if page < 1 or not 1 <= page_size <= 500:
            raise InvalidRequest("page must be >= 1 and page_size between 1 and 500")
        for value in (since, until):
            if value is not None and value.tzinfo is None:
                raise InvalidRequest("since/until must carry a time zone (e.g. ...Z)")
        now = self.now()
        conds = [self._scope(principal)]
        if standard is not None:
            conds.append(certificates.c.standards_met.like(f"%,{standard},%"))
        if status == "revoked":
            conds.append(certificates.c.status == "revoked")
        elif status == "valid":
            conds += [certificates.c.status != "revoked", certificates.c.expires_at > now]
        elif status == "expired":
            conds += [certificates.c.status != "revoked", certificates.c.expires_at <= now]
        if since is not None:
            conds.append(certificates.c.issued_at >= since)
        if until is not None:
            conds.append(certificates.c.issued_at <= until)
        where = and_(*conds)
        with self._tx() as conn:
            total = conn.execute(
                select(func.count()).select_from(certificates).where(where)
            ).scalar_one()
            rows = (
                conn.execute(
                    select(certificates)
                    .where(where)
                    .order_by(certificates.c.issued_at.desc(), certificates.c.cert_id.desc())
                    .limit(page_size)
                    .offset((page - 1) * page_size)
                )
                .mappings()
                .all()
            )
            who: Any
            if principal.team_id is not None:
                members = select(users.c.id).where(users.c.team_id == principal.team_id)
                who = usage_events.c.user_id.in_(members)
            else:
                who = usage_events.c.user_id == principal.user_id
            anomalies = conn.execute(
                select(usage_events.c.user_id, usage_events.c.at, usage_events.c.detail)
                .where(ANOMALY_KIND, who)
                .order_by(usage_events.c.at.desc())
                .limit(100)
            ).all()
        return AuditPage(
            items=[self._record(row, now) for row in rows],
            page=page,
            page_size=page_size,
            total=total,
            anomalies=[
                {
                    "user": a.user_id,
                    "detected_at": _iso(a.at),
                    "count_24h": json.loads(a.detail or "{}").get("count_24h"),
                }
                for a in anomalies
            ],
        )

    # -- keys ----------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """Every public key whose certificates can still be verified (RFC 7517).

        The active key, plus each retired key while any of its certificates
        is unexpired (revoked ones included: a verifier should still learn
        the certificate is genuine, then see it revoked).

        Raises:
            AuthorityUnavailable: the database failed.
        """
        now = self.now()
        live = signing_keys.c.last_expires_at > now
        with self._tx() as conn:
            rows = conn.execute(
                select(signing_keys.c.public_jwk)
                .where(or_(signing_keys.c.retired_at.is_(None), live))
                # The active key first, then newest first.
                .order_by(
                    signing_keys.c.retired_at.is_not(None),
                    signing_keys.c.retired_at.desc(),
                    signing_keys.c.created_at.desc(),
                )
            ).all()
        return {"keys": [json.loads(row[0]) for row in rows]}

    def rotate_keys(self) -> SigningKeyInfo:
        """Create a new signing key and make it active; the old one is retired
        (it stays in the JWKS until its last certificate expires).

        Raises:
            AuthorityError / AuthorityUnavailable: the signer or the database failed.
        """
        new = self.signer.create_key()
        now = self.now()
        with self._tx() as conn:
            self._add_key(conn, new, now)
        with self._lock:
            self._active = None
        return SigningKeyInfo(kid=new.kid, created_at=now, retired_at=None)

    def signing_keys(self) -> list[SigningKeyInfo]:
        """Every key this authority ever used, newest first. Raises AuthorityUnavailable."""
        with self._tx() as conn:
            rows = conn.execute(
                select(
                    signing_keys.c.kid, signing_keys.c.created_at, signing_keys.c.retired_at
                ).order_by(signing_keys.c.created_at.desc())
            ).all()
        return [
            SigningKeyInfo(kid=r.kid, created_at=r.created_at, retired_at=r.retired_at)
            for r in rows
        ]

    def health(self) -> dict[str, str]:
        """``{"status": "ok"}`` when the database answers. Raises AuthorityUnavailable."""
        with self._tx() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}
