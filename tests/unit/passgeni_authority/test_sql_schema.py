"""Every raw SQL statement of the authority matches the SQLAlchemy schema.

The raw statements live in one module (``passgeni_authority._sql``); here
each one that touches a table is prepared (``EXPLAIN``) against a database
created from ``metadata`` alone, so a statement naming a table or column the
schema does not have fails, and no other module of the package carries SQL.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from passgeni_authority import _sql
from passgeni_authority._db import certificates, metadata

_PACKAGE = Path(_sql.__file__).parent
_SQL_START = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|SAVEPOINT|RELEASE|ROLLBACK|BEGIN)\b"
)


@pytest.fixture(scope="module")
def schema_db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = tmp_path_factory.mktemp("schema") / "schema.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    return sqlite3.connect(path)


@pytest.mark.parametrize("name", sorted(_sql.TABLE_STATEMENTS))
def test_every_statement_prepares_against_the_schema(
    schema_db: sqlite3.Connection, name: str
) -> None:
    sql = _sql.TABLE_STATEMENTS[name]
    if "?" in sql:
        params: object = [None] * sql.count("?")
    else:
        params = dict.fromkeys(re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", sql))
    # Preparing resolves every table and column name (sqlite3.OperationalError if not).
    schema_db.execute(f"EXPLAIN {sql}", params).fetchall()


def test_a_statement_naming_a_missing_column_is_refused(schema_db: sqlite3.Connection) -> None:
    """The check above can fail: a typo'd column does not prepare."""
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        schema_db.execute("EXPLAIN SELECT revokd_at FROM api_keys").fetchall()


def test_every_table_statement_is_in_the_checked_list() -> None:
    module_statements = {
        value
        for name, value in vars(_sql).items()
        if name.isupper() and isinstance(value, str) and _SQL_START.match(value)
    }
    table_names = {t.name for t in metadata.sorted_tables}
    on_tables = {s for s in module_statements if any(t in s.split() for t in table_names)}
    assert on_tables <= set(_sql.TABLE_STATEMENTS.values())


def test_certificate_columns_are_the_tables() -> None:
    # Derived from the table: every column but the revocation's, in table order.
    assert (
        tuple(c.name for c in certificates.c if c.name not in ("revoked_at", "revocation_reason"))
        == _sql.CERT_COLUMNS
    )
    # Every column an INSERT must fill is written.
    required = {c.name for c in certificates.c if not c.nullable and c.default is None}
    assert required <= set(_sql.CERT_COLUMNS)


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_no_module_but_the_sql_module_carries_sql() -> None:
    offenders = {
        f"{path.name}: {literal[:60]!r}"
        for path in _PACKAGE.glob("*.py")
        if path.name != "_sql.py"
        for literal in _string_literals(path)
        if _SQL_START.match(literal)
    }
    assert not offenders, sorted(offenders)
