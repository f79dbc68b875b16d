"""Output helpers shared by CLI commands: JSON or aligned plain-text tables."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import InvalidRequest
from .._untrusted import printable
from ..model import EMBEDDED_ISSUER_NOTE, is_embedded_issuer

__all__ = ["print_json", "print_kv", "print_table", "warn_if_embedded", "write_output"]


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # Cells carry tenant text (labels, reasons): shown, never obeyed by the terminal.
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_kv(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {printable(value)}")


def warn_if_embedded(issuer: str) -> None:
    """Say so on stderr when the certificates come from an embedded, throwaway authority."""
    if is_embedded_issuer(issuer):
        print(f"passgeni: warning: {issuer}: {EMBEDDED_ISSUER_NOTE}", file=sys.stderr)


def write_output(out: str | None, data: bytes, *, binary_ok: bool = False) -> None:
    """Write to ``out`` (atomically, via a temp file beside it) or to stdout."""
    if out is None or out == "-":
        if not binary_ok:
            sys.stdout.write(data.decode("utf-8"))
        else:
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidRequest(f"cannot write {out!r}: {exc.strerror}") from None
