"""Every raw SQL statement of the authority, in one place.

The request path runs its statements on the driver connection (see
:mod:`._hot`): plain SQL that SQLite (>= 3.35) and PostgreSQL both accept
(``ON CONFLICT``, ``RETURNING``), every value bound as a ``:name``
parameter. The schema is the SQLAlchemy tables of :mod:`._db`; the names
used here are taken from those tables (:func:`_cols`, :func:`_insert`
refuse a column a table does not have, at import), and a test prepares
every statement against a database created from ``metadata``, so a
statement that names a table or column the schema lacks fails the tests.
Everything else (admin operations, listings) is written with SQLAlchemy Core
where it is used.
"""

from __future__ import annotations

from sqlalchemy import Table

from ._db import (
    api_keys,
    certificates,
    generation_requests,
    log_leaves,
    rate_limit_buckets,
    signing_keys,
    status_list_counter,
    teams,
    transparency_log,
    usage_events,
    users,
)

__all__ = [
    "BUCKET_VALUE",
    "CERT_COLUMNS",
    "COUNT_24H",
    "GCRA",
    "GCRA_LEASE",
    "INSERT_CERTIFICATE_SQLITE",
    "INSERT_EVENT",
    "INSERT_LOG_LEAF",
    "INSERT_REQUEST",
    "KEY_LOOKUP",
    "KEY_OWNER",
    "KEY_REVOCATION_STATE",
    "LATEST_ANOMALY",
    "LOG_GROW",
    "LOG_LEAF_HASHES",
    "LOG_SIZE",
    "NEXT_STATUS_INDEXES",
    "PG_STARTUP_LOCK",
    "PG_STARTUP_UNLOCK",
    "PING",
    "QUOTA",
    "RAISE_LAST_EXPIRY",
    "REFUND",
    "RELEASE_SAVEPOINT",
    "REQUEST_BY_DIGEST",
    "ROLLBACK_TO_SAVEPOINT",
    "SAVEPOINT",
    "SQLITE_BEGIN_IMMEDIATE",
    "SQLITE_BUSY_TIMEOUT",
    "SQLITE_FOREIGN_KEYS",
    "SQLITE_SYNC_FULL",
    "SQLITE_SYNC_NORMAL",
    "SQLITE_WAL",
    "TABLE_STATEMENTS",
    "USER_PLANS",
    "USER_TEAM",
    "WINDOW",
    "certificates_by_session",
    "insert_certificates",
    "stored_cert_ids",
]

#: The database's revocation state: any revocation (by any process, any path to the
#: database, or an operator's UPDATE) changes it; processes poll it to drop cached keys.
KEY_REVOCATION_STATE = (
    f"SELECT count(*), max({api_keys.c.revoked_at.name}) FROM {api_keys.name} "  # noqa: S608
    f"WHERE {api_keys.c.revoked_at.name} IS NOT NULL"
)


def _cols(table: Table, *names: str) -> str:
    """``a, b, c``: column names of ``table`` (a missing one raises at import)."""
    for name in names:
        if name not in table.c:
            raise KeyError(f"{table.name} has no column {name}")
    return ", ".join(names)


def _insert(table: Table, names: tuple[str, ...]) -> str:
    """``INSERT INTO t (a, b) VALUES (:a, :b)``."""
    values = ", ".join(f":{n}" for n in names)
    return f"INSERT INTO {table.name} ({_cols(table, *names)}) VALUES ({values})"  # noqa: S608


# -- API keys and users --------------------------------------------------------------

KEY_LOOKUP = (
    f"SELECT {_cols(api_keys, 'prefix', 'user_id', 'team_id', 'rate_limit', 'revoked_at', 'scope')} "  # noqa: S608
    f"FROM {api_keys.name} WHERE key_hash = :key_hash"
)
#: The owner of a key prefix (a failed authentication names whose key was tried).
KEY_OWNER = f"SELECT {_cols(api_keys, 'user_id')} FROM {api_keys.name} WHERE prefix = :prefix"  # noqa: S608
USER_TEAM = f"SELECT {_cols(users, 'team_id')} FROM {users.name} WHERE id = :user_id"  # noqa: S608
#: A user's plan, its team and the team's plan (see _plans).
USER_PLANS = (
    f"SELECT {users.name}.plan, {users.name}.team_id, {teams.name}.plan "  # noqa: S608
    f"FROM {users.name} LEFT JOIN {teams.name} ON {teams.name}.id = {users.name}.team_id "
    f"WHERE {users.name}.id = :user_id"
)

# -- usage events and anomalies ------------------------------------------------------

INSERT_EVENT = _insert(usage_events, ("kind", "user_id", "ip", "at", "detail"))
LATEST_ANOMALY = (
    f"SELECT {_cols(usage_events, 'at')} FROM {usage_events.name} "  # noqa: S608
    "WHERE kind = 'anomaly' AND user_id = :user_id AND at > :since ORDER BY at DESC LIMIT 1"
)
COUNT_24H = (
    f"SELECT count(*) FROM {certificates.name} "  # noqa: S608
    f"WHERE {_cols(certificates, 'owner_user_id')} = :user_id AND issued_at > :since"
)

# -- generation requests (what session tokens refer to) -----------------------------

INSERT_REQUEST = (
    _insert(generation_requests, ("digest", "request", "created_at"))
    + " ON CONFLICT (digest) DO NOTHING"
)
REQUEST_BY_DIGEST = (
    f"SELECT {_cols(generation_requests, 'request')} "  # noqa: S608
    f"FROM {generation_requests.name} WHERE digest = :digest"
)

# -- certificates ----------------------------------------------------------------------

#: The columns issuance writes: every column of the table but the revocation's.
CERT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in certificates.c if c.name not in ("revoked_at", "revocation_reason")
)


def insert_certificates(rows: int) -> str:
    """``INSERT`` of ``rows`` certificates that skips any whose session was
    already redeemed and returns the sessions it did redeem."""
    values = ", ".join("(" + ", ".join(f":{c}{i}" for c in CERT_COLUMNS) + ")" for i in range(rows))
    return (
        f"INSERT INTO {certificates.name} ({', '.join(CERT_COLUMNS)}) VALUES {values} "  # noqa: S608
        "ON CONFLICT (session_jti) DO NOTHING RETURNING session_jti"
    )


#: SQLite's form: one row per execution, positional (``executemany``). In-process
#: statements cost no round trip, and one bound row per execution is cheaper
#: for SQLite than a multi-row ``VALUES`` list.
INSERT_CERTIFICATE_SQLITE = (
    f"INSERT INTO {certificates.name} ({', '.join(CERT_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(CERT_COLUMNS))}) ON CONFLICT (session_jti) DO NOTHING"
)


def stored_cert_ids(count: int) -> str:
    """SQLite: which of ``count`` positional cert ids are stored."""
    marks = ", ".join("?" * count)
    return f"SELECT cert_id FROM {certificates.name} WHERE cert_id IN ({marks})"  # noqa: S608


def certificates_by_session(count: int) -> str:
    """The certificates of ``count`` sessions (``:j0``...): a retried redemption's."""
    marks = ", ".join(f":j{i}" for i in range(count))
    c = certificates.c
    return (
        f"SELECT {c.session_jti.name}, {c.cert_id.name}, {c.owner_user_id.name}, "  # noqa: S608
        f"{c.token.name}, {c.status.name} FROM {certificates.name} "
        f"WHERE {c.session_jti.name} IN ({marks})"
    )


# -- signing keys ----------------------------------------------------------------------

#: Never lowered: another process may have committed a later bound.
RAISE_LAST_EXPIRY = (
    f"UPDATE {signing_keys.name} SET {_cols(signing_keys, 'last_expires_at')} = :bound "  # noqa: S608
    "WHERE kid = :kid AND (last_expires_at IS NULL OR last_expires_at < :bound)"
)

# -- status lists ------------------------------------------------------------------------

NEXT_STATUS_INDEXES = (
    f"UPDATE {status_list_counter.name} "  # noqa: S608
    f"SET {_cols(status_list_counter, 'next_idx')} = next_idx + :count "
    "WHERE name = :name RETURNING next_idx"
)

# -- the transparency log ------------------------------------------------------------------

#: Grows the log by :count leaves; the new size. Its row lock, held to the commit,
#: orders every process's appends (the leaves of a transaction get the indexes
#: ``size - count .. size - 1``).
LOG_GROW = (
    f"UPDATE {transparency_log.name} "  # noqa: S608
    f"SET {_cols(transparency_log, 'size')} = size + :count "
    "WHERE name = :name RETURNING size"
)
LOG_SIZE = (
    f"SELECT {_cols(transparency_log, 'size')} FROM {transparency_log.name} WHERE name = :name"  # noqa: S608
)
INSERT_LOG_LEAF = _insert(log_leaves, ("idx", "leaf_hash", "kind", "cert_id", "data"))
LOG_LEAF_HASHES = (
    f"SELECT {_cols(log_leaves, 'idx', 'leaf_hash')} FROM {log_leaves.name} "  # noqa: S608
    "WHERE idx >= :start AND idx < :stop ORDER BY idx"
)

# -- rate limits -------------------------------------------------------------------------

_B = rate_limit_buckets.name
_BUCKET_COLUMNS = _cols(rate_limit_buckets, "bucket", "value", "expires_at")

# A sliding window's current fixed window, counted only when :step fits under
# :cap (the limit less the previous window's weighted count, computed by the
# caller): a refused request is not counted, and the insert of a new window is
# conditional too. :ret hands back the unused tokens of this process's lapsed
# lease of the window. The row outlives its window by a period: it is the
# next window's previous one.
WINDOW = (
    f"INSERT INTO {_B} ({_BUCKET_COLUMNS}) SELECT :bucket, :step, :end WHERE :step <= :cap "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_B}.value + :step - :ret "
    f"WHERE {_B}.value + :step - :ret <= :cap "
    "RETURNING value"
)
# A stored TAT never exceeds now + tolerance in normal operation; one that
# does means the clock went backwards (NTP step, restored VM, test clock):
# restart the bucket instead of locking the caller out for the jump.
_BASE = (
    f"(CASE WHEN {_B}.value > :now + :tol THEN :now "
    f"WHEN {_B}.value > :now THEN {_B}.value ELSE :now END)"
)
GCRA = (
    f"INSERT INTO {_B} ({_BUCKET_COLUMNS}) "  # noqa: S608
    "VALUES (:bucket, :now + :step, :now + :tol) "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_BASE} + :step, expires_at = {_BASE} + :step "
    f"WHERE {_BASE} + :step - :now <= :tol "
    "RETURNING value"
)
BUCKET_VALUE = f"SELECT value FROM {_B} WHERE bucket = :bucket"  # noqa: S608
# A monthly quota: a new bucket starts from :init (the certificates already
# stored that month); :step is counted only if it fits under :cap.
QUOTA = (
    f"INSERT INTO {_B} ({_BUCKET_COLUMNS}) SELECT :bucket, :init + :step, :end "
    "WHERE :init + :step <= :cap "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_B}.value + :step "
    f"WHERE {_B}.value + :step <= :cap "
    "RETURNING value"
)
#: Undo an admission in its own transaction (a later limit refused the request).
REFUND = (
    f"UPDATE {_B} SET value = value - :step, expires_at = expires_at - :exp "  # noqa: S608
    "WHERE bucket = :bucket"
)
# A GCRA lease handing back :ret seconds of a lapsed lease first: the TAT moves
# back by the unused tokens, never before now (a bucket is never more than full).
_RETURNED = f"(CASE WHEN {_BASE} - :ret > :now THEN {_BASE} - :ret ELSE :now END)"
GCRA_LEASE = (
    f"INSERT INTO {_B} ({_BUCKET_COLUMNS}) "  # noqa: S608
    "VALUES (:bucket, :now + :step, :now + :tol) "
    f"ON CONFLICT (bucket) DO UPDATE SET value = {_RETURNED} + :step, "
    f"expires_at = {_RETURNED} + :step "
    f"WHERE {_RETURNED} + :step - :now <= :tol "
    "RETURNING value"
)

# -- transactions (no table) ---------------------------------------------------------------

# Every savepoint has the same name: both backends resolve a name to the
# innermost savepoint that has it, so nesting still works, and the statements
# stay constant (a name per savepoint would make each one new SQL for the
# driver's statement cache).
SAVEPOINT = "SAVEPOINT pg_unit"
RELEASE_SAVEPOINT = "RELEASE SAVEPOINT pg_unit"
ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT pg_unit"
#: SQLite, outside a transaction: the group commit syncs the WAL itself (see _commit).
SQLITE_SYNC_NORMAL = "PRAGMA synchronous=NORMAL"

# -- connections (no table) ---------------------------------------------------------------

#: Every SQLite connection: WAL; FULL: a commit is on disk before we answer
#: (certificates are evidence); foreign keys; waits instead of SQLITE_BUSY.
SQLITE_WAL = "PRAGMA journal_mode=WAL"
SQLITE_SYNC_FULL = "PRAGMA synchronous=FULL"
SQLITE_FOREIGN_KEYS = "PRAGMA foreign_keys=ON"
SQLITE_BUSY_TIMEOUT = "PRAGMA busy_timeout=30000"
SQLITE_BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
#: PostgreSQL: start-up (migrations, first key, first secret) under one advisory lock.
PG_STARTUP_LOCK = "SELECT pg_advisory_lock(7263002)"
PG_STARTUP_UNLOCK = "SELECT pg_advisory_unlock(7263002)"
PING = "SELECT 1"

#: Statements on tables, for the schema check (tests): name -> SQL.
TABLE_STATEMENTS: dict[str, str] = {
    "KEY_LOOKUP": KEY_LOOKUP,
    "KEY_OWNER": KEY_OWNER,
    "KEY_REVOCATION_STATE": KEY_REVOCATION_STATE,
    "USER_TEAM": USER_TEAM,
    "USER_PLANS": USER_PLANS,
    "QUOTA": QUOTA,
    "INSERT_EVENT": INSERT_EVENT,
    "LATEST_ANOMALY": LATEST_ANOMALY,
    "COUNT_24H": COUNT_24H,
    "INSERT_REQUEST": INSERT_REQUEST,
    "REQUEST_BY_DIGEST": REQUEST_BY_DIGEST,
    "insert_certificates(2)": insert_certificates(2),
    "INSERT_CERTIFICATE_SQLITE": INSERT_CERTIFICATE_SQLITE,
    "stored_cert_ids(2)": stored_cert_ids(2),
    "certificates_by_session(2)": certificates_by_session(2),
    "RAISE_LAST_EXPIRY": RAISE_LAST_EXPIRY,
    "NEXT_STATUS_INDEXES": NEXT_STATUS_INDEXES,
    "LOG_GROW": LOG_GROW,
    "LOG_SIZE": LOG_SIZE,
    "INSERT_LOG_LEAF": INSERT_LOG_LEAF,
    "LOG_LEAF_HASHES": LOG_LEAF_HASHES,
    "WINDOW": WINDOW,
    "GCRA": GCRA,
    "BUCKET_VALUE": BUCKET_VALUE,
    "REFUND": REFUND,
    "GCRA_LEASE": GCRA_LEASE,
}
