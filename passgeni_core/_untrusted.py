"""Parsing untrusted JSON: bounded in size and nesting, every failure in the error tree.

``json.loads`` recurses once per nesting level, so 1,100 ``[`` in a 1.5 KB token
header raised a raw ``RecursionError`` out of the verifier (issue #21). Every
parser of input a stranger can hand us (tokens, status lists, JWKS files,
evidence bundles, the Terraform program's stdin, stored secret values) goes
through :func:`loads_untrusted`: the size is checked first, then the nesting
depth by a scan that never recurses, and only then is the text parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._errors import InvalidRequest, PassgeniError

__all__ = ["MAX_DEPTH", "checked_text", "csv_cell", "loads_untrusted", "printable"]

#: Deeper than anything PassGeni writes (certificates nest 3 levels) by a wide margin.
MAX_DEPTH = 32

# JSON strings (with their escapes): brackets inside them do not nest.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")


def _depth(text: str) -> int:
    deepest = depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def loads_untrusted(
    data: str | bytes,
    *,
    what: str,
    max_bytes: int,
    error: type[PassgeniError] = InvalidRequest,
    max_depth: int = MAX_DEPTH,
    reject_duplicates: bool = True,
) -> Any:
    """The JSON value of ``data``, or ``error`` naming ``what`` and the rule it broke.

    Raises:
        ``error`` (InvalidRequest by default): larger than ``max_bytes``, not UTF-8,
            nested deeper than ``max_depth``, a duplicate key (unless allowed), or not
            JSON. The message names ``what``, never echoes the input.
    """
    size = len(data)
    if size > max_bytes:
        raise error(f"{what} is {size} bytes, more than the {max_bytes} allowed")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text") from None
    if _depth(data) > max_depth:
        raise error(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates if reject_duplicates else None)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise error(f"{what} nests too deep") from None
    except ValueError as exc:
        reason = str(exc) if str(exc).startswith("duplicate key") else "not valid JSON"
        raise error(f"{what}: {reason}") from None


# C0 and C1 controls, DEL, and the bidirectional overrides and isolates that can reorder
# what a terminal or a spreadsheet shows (an auditee's label must not rewrite the screen).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A cell a spreadsheet would evaluate (OWASP's CSV-injection rule).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(value: object) -> str:
    """``value`` as text that cannot drive a terminal: controls shown as ``\\xNN`` escapes."""
    return _CONTROLS.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        str(value),
    )


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates: controls escaped (a carriage return
    cannot split the row), and a leading ``= + - @`` neutralised with a ``'``."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # ours, never a formula
    text = str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return printable(text)


def checked_text(value: object, *, name: str, max_length: int, min_length: int = 1) -> str:
    """A client's text field as stored: a string of valid Unicode (no lone surrogate, which
    JSON's ``\\ud800`` escape allows and no database can store), no control characters
    (NUL included), ``min_length``-``max_length`` characters once stripped.

    Raises:
        InvalidRequest: naming ``name`` and the rule (the value is not echoed).
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    text = value.strip()
    if not min_length <= len(text) <= max_length:
        raise InvalidRequest(f"{name} must be {min_length}-{max_length} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{name} must be valid Unicode text (no lone surrogates)") from None
    if _CONTROLS.search(text):
        raise InvalidRequest(f"{name} must not contain control characters")
    return text
