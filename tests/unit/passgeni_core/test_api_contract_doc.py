"""``docs/api-contract.md`` says what the wire model says.

Every body of the API is a msgspec Struct in ``passgeni_core.client``; the
contract document lists each one's fields in a table introduced by
``**Fields** (`StructName`):``. This test renders the table each Struct's
schema implies and compares it with the document's, so neither can change
without the other. On a mismatch the message is the table to paste.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from passgeni_core import client as wire
from tests.support.authority_processes import ROOT

DOC = Path(ROOT) / "docs" / "api-contract.md"
BODIES: tuple[type[msgspec.Struct], ...] = (*wire.REQUEST_BODIES, *wire.ANSWER_BODIES)
HEADER = ("field", "type", "required", "constraints")

_TABLE = re.compile(r"^\*\*Fields\*\* \(`(\w+)`\):\n\n((?:\|.*\|\n)+)", re.MULTILINE)


def _components() -> dict[str, Any]:
    _refs, components = msgspec.json.schema_components(
        BODIES, ref_template="#/components/schemas/{name}"
    )
    return components


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rpartition('/')[2]}`"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "string" and schema.get("format") == "date-time":
        return "date-time"
    return str(kind) if kind else "any"


def _limits(schema: dict[str, Any]) -> list[str]:
    out = []
    for option in schema.get("anyOf", [schema]):
        if option.get("minLength") == 1:
            out.append("non-empty")
        elif "minLength" in option:
            out.append(f"at least {option['minLength']} characters")
        if "maxLength" in option:
            out.append(f"at most {option['maxLength']} characters")
        if "minimum" in option:
            out.append(f"at least {option['minimum']}")
        if "maximum" in option:
            out.append(f"at most {option['maximum']}")
        if "pattern" in option:
            out.append(f"matches `{option['pattern']}`")
        if "maxItems" in option:
            out.append(f"at most {option['maxItems']} items")
        if isinstance(option.get("items"), dict) and "$ref" not in option["items"]:
            out.extend(f"each {limit}" for limit in _limits(option["items"]))
    return out


def expected_rows(body: type[msgspec.Struct]) -> list[tuple[str, str, str, str]]:
    """The table rows the Struct's schema implies: field, type, required, constraints."""
    schema = _components()[body.__name__]
    required = set(schema.get("required", ()))
    return [
        (
            f"`{name}`",
            _type(field),
            "yes" if name in required else "no",
            "; ".join(_limits(field)),
        )
        for name, field in schema["properties"].items()
    ]


def _render(rows: list[tuple[str, str, str, str]]) -> str:
    lines = [f"| {' | '.join(HEADER)} |", f"|{'---|' * len(HEADER)}"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def documented_tables() -> dict[str, list[tuple[str, ...]]]:
    tables: dict[str, list[tuple[str, ...]]] = {}
    for match in _TABLE.finditer(DOC.read_text(encoding="utf-8")):
        name, table = match.group(1), match.group(2).splitlines()
        assert name not in tables, f"two tables for {name}"
        assert _cells(table[0]) == HEADER, f"{name}: the header must be {HEADER}"
        tables[name] = [_cells(line) for line in table[2:]]
    return tables


def test_every_table_names_a_wire_body() -> None:
    tables = documented_tables()
    assert tables, "no **Fields** tables found in docs/api-contract.md"
    assert set(tables) <= {body.__name__ for body in BODIES}, set(tables)


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.__name__)
def test_the_contract_lists_each_bodys_fields_as_the_struct_has_them(
    body: type[msgspec.Struct],
) -> None:
    tables = documented_tables()
    expected = expected_rows(body)
    table = f"**Fields** (`{body.__name__}`):\n\n{_render(expected)}"
    assert body.__name__ in tables, f"docs/api-contract.md has no table for it; add:\n\n{table}"
    assert tables[body.__name__] == expected, f"docs/api-contract.md should say:\n\n{table}"


def test_the_tables_notice_a_change_of_either_side() -> None:
    """The comparison is not vacuous: one field renamed, retyped or made optional fails it."""
    rows = expected_rows(wire.IssuedCertificateBody)
    assert ("`cert_id`", "string", "yes", "non-empty") in rows
    assert ("`issued_at`", "date-time", "yes", "") in rows
    record = dict((row[0], row[1:]) for row in expected_rows(wire.CertificateRecordBody))
    assert record["`revoked_at`"] == ("date-time or null", "no", "")
    assert record["`status`"][0] == "one of `expired`, `revoked`, `valid`"
    assert expected_rows(wire.IssueBody)[1][3] == "matches `^[A-Za-z0-9_-]{43}$`"
