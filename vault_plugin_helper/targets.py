"""Credential targets: the systems a rotated password is applied to.

The interface is :class:`passgeni_core.workflows.CredentialTarget` (``set_password``,
``test_password``, ``excluded_characters``, ``describe``); implementations are
registered under the ``passgeni.targets`` entry-point group by kind, so
``passgeni rotate`` and the AWS rotation handler find them without importing
them by name. Shipped here: :class:`PostgresTarget` (``postgresql``).

PostgreSQL
==========

``ALTER ROLE <role> PASSWORD '<verifier>'`` where the role is quoted as an
identifier (``psycopg.sql.Identifier``) and the password is sent as a
SCRAM-SHA-256 *verifier* computed here (RFC 5802 / RFC 7677, what ``psql``'s
``\\password`` does): the plaintext never crosses the wire in a statement, so it
cannot land in the server's log (``log_statement = 'all'``,
``pg_stat_statements``, error reports). The server keeps the verifier as is.

Connection: a libpq conninfo string or URI (``host=db port=5432 dbname=app``);
the admin identity is ``admin_user`` (default: the role itself, the
"single user" strategy: the role changes its own password; with
``template_role``, a role that does not exist yet is created and granted
that role's membership, the "alternating users" strategy's clone) authenticated by
``admin_password`` or libpq's usual sources (``PGPASSWORD``, ``~/.pgpass``,
certificates). ``test_password`` logs in to the same host and database as
the role with the new password.

Excluded characters: ``@ / : ? # % & " ' \\`` by default (``exclude`` option
replaces them): they break connection URIs (``postgresql://user:p@ss@host``),
libpq conninfo quoting and shell snippets, the commonest support ticket after
a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from passgeni_core import InvalidRequest
from passgeni_core.workflows import TargetError, TargetLoginFailed, TargetUnavailable

__all__ = [
    "DEFAULT_POSTGRES_EXCLUDE",
    "PostgresTarget",
    "scram_sha256_verifier",
]

DEFAULT_POSTGRES_EXCLUDE = "@/:?#%&\"'\\"
SCRAM_ITERATIONS = 4096
_OPTIONS = {
    "conninfo",
    "dsn",
    "host",
    "port",
    "dbname",
    "role",
    "admin_user",
    "admin_password",
    "exclude",
    "connect_timeout",
    "sslmode",
    "template_role",
}


def scram_sha256_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """PostgreSQL's stored form of ``password``: ``SCRAM-SHA-256$i:salt$StoredKey:ServerKey``.

    Passwords here are printable ASCII, for which SASLprep is the identity.

    Raises:
        InvalidRequest: the password is not printable ASCII.
    """
    if not password or not all(0x20 < ord(c) < 0x7F for c in password):
        raise InvalidRequest("a PostgreSQL password set here must be printable ASCII")
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _opt_str(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None or value == "":
        return None
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and key in ("port", "connect_timeout")
    ):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRequest(f"postgresql target: {key} must be a string")
    return value


@dataclass(frozen=True, kw_only=True, repr=False)
class PostgresTarget:
    """A PostgreSQL role whose password the rotation sets. ``repr`` hides the admin password."""

    role: str
    conninfo: str = ""
    admin_user: str | None = None
    admin_password: str | None = field(default=None, compare=False)
    excluded_characters: str = DEFAULT_POSTGRES_EXCLUDE
    connect_timeout: int = 5
    #: When set and ``role`` does not exist, ``set_password`` creates it (``LOGIN``) and
    #: grants it ``template_role``'s membership: the alternating-users strategy's clone.
    template_role: str | None = None
    system: str = "postgresql"

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role or len(self.role) > 63:
            raise InvalidRequest("postgresql target: role must be a name of 1-63 characters")
        if "\x00" in self.role:
            raise InvalidRequest("postgresql target: role may not contain NUL")
        self._parsed()  # validate the conninfo now, not at rotation time

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PostgresTarget:
        """Build from inventory/handler options: ``conninfo`` (or ``dsn``) or ``host``/
        ``port``/``dbname``, ``role``, optional ``admin_user``, ``admin_password``,
        ``exclude``, ``connect_timeout``, ``sslmode``.

        Raises:
            InvalidRequest: unknown or ill-typed options, a malformed conninfo.
        """
        unknown = sorted(str(k)[:40] for k in options if k not in _OPTIONS)
        if unknown:
            raise InvalidRequest(
                f"postgresql target: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_OPTIONS))})"
            )
        from psycopg.conninfo import make_conninfo

        base = _opt_str(options, "conninfo") or _opt_str(options, "dsn") or ""
        extra = {
            k: v
            for k in ("host", "port", "dbname", "sslmode")
            if (v := _opt_str(options, k)) is not None
        }
        try:
            conninfo = make_conninfo(base, **extra) if extra else base
        except Exception:
            raise InvalidRequest("postgresql target: the conninfo is malformed") from None
        role = _opt_str(options, "role")
        if role is None:
            raise InvalidRequest("postgresql target: role is required")
        exclude = options.get("exclude")
        if exclude is not None and not isinstance(exclude, str):
            raise InvalidRequest("postgresql target: exclude must be a string")
        timeout = _opt_str(options, "connect_timeout")
        try:
            seconds = int(timeout) if timeout is not None else 5
        except ValueError:
            raise InvalidRequest("postgresql target: connect_timeout must be an integer") from None
        return cls(
            role=role,
            conninfo=conninfo,
            admin_user=_opt_str(options, "admin_user"),
            admin_password=_opt_str(options, "admin_password"),
            excluded_characters=DEFAULT_POSTGRES_EXCLUDE if exclude is None else exclude,
            connect_timeout=max(1, seconds),
            template_role=_opt_str(options, "template_role"),
        )

    def _parsed(self) -> dict[str, str]:
        from psycopg.conninfo import conninfo_to_dict

        try:
            parsed = conninfo_to_dict(self.conninfo)
        except Exception:
            raise InvalidRequest("postgresql target: the conninfo is malformed") from None
        return {k: str(v) for k, v in parsed.items() if v is not None}

    def describe(self) -> str:
        parsed = self._parsed()
        where = parsed.get("host", "local socket")
        if "port" in parsed:
            where += f":{parsed['port']}"
        db = parsed.get("dbname")
        return f"postgresql role {self.role!r} on {where}" + (f"/{db}" if db else "")

    def __repr__(self) -> str:
        return f"PostgresTarget({self.describe()})"

    __str__ = __repr__

    def _connect(self, user: str, password: str | None) -> Any:
        import psycopg

        params = self._parsed()
        params["user"] = user
        params["connect_timeout"] = str(self.connect_timeout)
        if password is not None:
            params["password"] = password
        # psycopg's stubs type **kwargs as its connection-info keys' exact types;
        # a conninfo dict of strings is what libpq itself accepts.
        return psycopg.connect(**params, autocommit=True)  # type: ignore[arg-type]

    def _admin_connect(self) -> Any:
        import psycopg

        user = self.admin_user or self.role
        try:
            return self._connect(user, self.admin_password)
        except psycopg.OperationalError as exc:
            raise _connection_error(exc, f"{self.describe()} (as {user!r})") from None

    def set_password(self, password: str) -> None:
        import psycopg
        from psycopg import sql

        verifier = scram_sha256_verifier(password)
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(self.role), sql.Literal(verifier)
        )
        with self._admin_connect() as conn:
            try:
                if self.template_role is not None and not self._exists(conn):
                    # AWS's alternating-users templates: the clone is created with the
                    # password and inherits the original role's privileges.
                    with conn.transaction():
                        conn.execute(
                            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                                sql.Identifier(self.role), sql.Literal(verifier)
                            )
                        )
                        conn.execute(
                            sql.SQL("GRANT {} TO {}").format(
                                sql.Identifier(self.template_role), sql.Identifier(self.role)
                            )
                        )
                    return
                conn.execute(statement)
            except psycopg.Error as exc:
                # The server's message names the role, never the verifier.
                detail = _pg_message(exc)
                raise TargetError(f"ALTER ROLE failed on {self.describe()}: {detail}") from None

    def _exists(self, conn: Any) -> bool:
        row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.role,)).fetchone()
        return row is not None

    def test_password(self, password: str) -> None:
        import psycopg

        try:
            conn = self._connect(self.role, password)
        except psycopg.OperationalError as exc:
            raise _connection_error(exc, self.describe()) from None
        with conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        return None


def _pg_message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = primary or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return " ".join(str(text).split())[:200]


def _connection_error(exc: BaseException, where: str) -> TargetError:
    text = str(exc)
    lowered = text.lower()
    if "password authentication failed" in lowered or "authentication failed" in lowered:
        return TargetLoginFailed(f"login refused by {where}: password authentication failed")
    if "does not exist" in lowered and "role" in lowered:
        return TargetLoginFailed(f"login refused by {where}: the role does not exist")
    if "no password supplied" in lowered:
        return TargetLoginFailed(f"login refused by {where}: no password supplied")
    # Connection refused, timeouts, DNS: libpq's first line names host and port only.
    first = " ".join(text.splitlines()[0].split())[:200] if text else type(exc).__name__
    return TargetUnavailable(f"cannot connect to {where}: {first}")
