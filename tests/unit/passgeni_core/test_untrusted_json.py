"""Every parser of untrusted JSON is bounded in size and depth (issue #21, finding 3, by class).

A 1.5 KB token whose header opened 1,100 arrays made ``verify_certificate`` raise a raw
``RecursionError``, and ``passgeni evidence verify`` crashed the same way on a bundle. The class
is "a parser of input a stranger controls recursing or growing without bound": each entry point
below is fed the same hostile shapes and must answer with an error of the tree.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, strategies as st

from passgeni_core import (
    JWKS,
    InvalidRequest,
    MalformedToken,
    PassgeniError,
    loads_untrusted,
    verify_certificate,
)
from passgeni_core.audit import verify_bundle
from passgeni_core.crypto import unverified_payload, verify_status_list

DEEP = b'{"a":' + b"[" * 1100
DEEP_OBJECTS = b'{"a":' * 1100


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: bytes, payload: bytes = b"{}") -> str:
    return f"{_b64(header)}.{_b64(payload)}.{_b64(b'sig')}"


def _bundle(manifest: bytes, signature: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("manifest.json", manifest)
        zf.writestr("manifest.jwt", signature)
    return out.getvalue()


ENTRY_POINTS: dict[str, Callable[[bytes], Any]] = {
    "certificate header": lambda doc: verify_certificate(_token(doc), {"keys": []}, issuer="x"),
    "unverified payload": lambda doc: unverified_payload(_token(b"{}", doc)),
    "status list header": lambda doc: verify_status_list(
        _token(doc), JWKS.from_dict({"keys": []}), issuer="x", uri="x"
    ),
    "JWKS file": lambda doc: JWKS.from_dict(doc),
    "bundle manifest": lambda doc: verify_bundle(_bundle(doc, _token(b"{}"))),
    "bundle signature": lambda doc: verify_bundle(
        _bundle(json.dumps({"format": "x"}).encode(), _token(doc))
    ),
}


@pytest.mark.parametrize("hostile", [DEEP, DEEP_OBJECTS], ids=["arrays", "objects"])
@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_deep_nesting_is_an_error_of_the_tree(name: str, hostile: bytes) -> None:
    with pytest.raises(PassgeniError):
        ENTRY_POINTS[name](hostile)


def test_the_refusal_names_the_part_and_the_rule() -> None:
    with pytest.raises(MalformedToken, match="header nests deeper than 32 levels"):
        verify_certificate(_token(DEEP), {"keys": []}, issuer="x")
    with pytest.raises(InvalidRequest, match="JWKS is 2097152 bytes, more than"):
        JWKS.from_dict(b" " * 2 * 1024 * 1024)
    with pytest.raises(MalformedToken, match="duplicate key 'alg'"):
        verify_certificate(_token(b'{"alg":"ES256","alg":"none"}'), {"keys": []}, issuer="x")


def test_loads_untrusted_refuses_each_rule_with_the_given_error() -> None:
    with pytest.raises(MalformedToken, match="thing is 11 bytes, more than the 10 allowed"):
        loads_untrusted(b"[" * 11, what="thing", max_bytes=10, error=MalformedToken)
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        loads_untrusted(b"\xff", what="thing", max_bytes=10)
    with pytest.raises(InvalidRequest, match="thing: not valid JSON"):
        loads_untrusted("{", what="thing", max_bytes=10)
    with pytest.raises(InvalidRequest, match="nests deeper than 2"):
        loads_untrusted("[[[1]]]", what="thing", max_bytes=10, max_depth=2)
    # Brackets inside strings do not nest; escaped quotes do not end a string.
    assert loads_untrusted('["[[[\\"]]]"]', what="thing", max_bytes=20, max_depth=1) == ['[[["]]]']
    assert loads_untrusted('{"a":1,"a":2}', what="t", max_bytes=20, reject_duplicates=False) == {
        "a": 2
    }


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_what_json_writes_reads_back(value: Any) -> None:
    text = json.dumps(value)
    assert loads_untrusted(text, what="value", max_bytes=len(text)) == value


@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_fail_in_the_tree(data: bytes) -> None:
    with contextlib.suppress(InvalidRequest):
        loads_untrusted(data, what="bytes", max_bytes=200, max_depth=8)


# --- what the auditor's tools write: CSV cells and terminal text (issue #21, finding 6) ------


HOSTILE_TEXT = [
    '=HYPERLINK("https://evil.test","click")',
    "=1+2",
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tindented",
    "row\rsplit",
    "line\nbreak",
    "\x1b[2J\x1b[31mred",
    "right\u202eto-left",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_csv_cells_are_never_formulas_or_new_rows(text: str) -> None:
    import csv

    from passgeni_core import csv_cell

    cell = csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert not any(ch in cell for ch in "\r\n\t\x1b\u202e")
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow([cell, "next"])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [[cell, "next"]]
    assert csv_cell(-3) == "-3" and csv_cell(None) == ""


@given(st.text(max_size=50))
def test_printable_text_holds_no_control_character(text: str) -> None:
    import unicodedata

    from passgeni_core import printable

    shown = printable(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in shown)
    assert not any(ch in shown for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    if text.isprintable():
        assert shown == text


def test_a_registry_csv_with_tenant_labels_and_reasons_stays_inert() -> None:
    import csv
    from datetime import UTC, datetime

    from passgeni_core.audit import Registry, RegistryEntry

    entry = RegistryEntry(
        cert_id="pg_1",
        status="revoked",
        label='=HYPERLINK("https://evil.test","open")',
        path="secret/a\rinjected,row",
        revocation_reason="\x1b]0;owned\x07gone",
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    text = Registry(entries=(entry,), generated_at=datetime(2026, 12, 4, tzinfo=UTC)).to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1 and "\r" not in text and "\x1b" not in text and "\x07" not in text
    assert rows[0]["label"].startswith("'=") and rows[0]["cert_id"] == "pg_1"
    assert all(line.startswith('"') for line in text.splitlines())  # every field quoted
