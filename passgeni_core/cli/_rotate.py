"""``passgeni rotate --inventory FILE.yaml``: rotate many credentials across stores.

Each inventory entry names a destination (store URI), a preset and optionally
a PostgreSQL role (or another ``passgeni.targets`` kind) to apply the password
to; the format is documented in :func:`passgeni_core._rotation.parse_inventory`.
Entries run concurrently (``--concurrency``, default 8), with a progress bar
on stderr and a summary table on stdout (``--json``: one JSON document).
Credentials without a target are rotated in batches
(:func:`passgeni_core._rotation.rotate_many`): one store read each, one
authority round trip per chunk of 100 to certify them, then the writes,
``--concurrency`` at a time, in the same nothing-lost order as one by one.

* Resumable: the inventory's ``epoch`` (or ``--epoch``) is every entry's
  keeper, recorded in its certificate; re-running skips each credential
  already rotated for that epoch (``unchanged``), so after a partial failure
  the same command finishes the job.
* Continues past failures; exits 4 if any entry failed (0 otherwise), 2 for
  a malformed inventory.
* ``--dry-run`` reads only and says what would be created or rotated.

Progress and tables use ``rich`` and the inventory ``PyYAML`` (the
``passgeni[rotate]`` extra), both imported only when this command runs.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequest, PassgeniError
from ._options import add_connection_options, authority_config

if TYPE_CHECKING:
    from ..client import AuthorityClient
    from ..stores import SecretStore, StoreURI
    from ..workflows import InventoryEntry, RotationResult

#: An inventory of tens of thousands of entries is a few MiB of YAML.
MAX_INVENTORY_CHARS = 8 * 1024 * 1024

__all__ = ["EXIT_FAILED", "load_inventory", "register", "rotate_all"]

EXIT_FAILED = 4


def load_inventory(path: Path, *, epoch: str | None = None) -> list[InventoryEntry]:
    """Read and validate an inventory file (YAML, or JSON which is YAML).

    Raises:
        InvalidRequest: unreadable file, invalid YAML, or an invalid entry.
    """
    from ..workflows import parse_inventory

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read inventory {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"inventory {str(path)!r} is not UTF-8 text") from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - the rotate extra is missing
        raise InvalidRequest(
            "passgeni rotate needs PyYAML: pip install 'passgeni[rotate]'"
        ) from None
    if len(text) > MAX_INVENTORY_CHARS:
        raise InvalidRequest(
            f"inventory {str(path)!r} is larger than {MAX_INVENTORY_CHARS // 1024 // 1024} MiB"
        )
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise InvalidRequest(f"inventory {str(path)!r} nests too deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InvalidRequest(f"inventory {str(path)!r} is not valid YAML{where}") from None
    return parse_inventory(data, epoch=epoch)


@dataclass
class Outcome:
    """One entry's result: a :class:`RotationResult` or an error (code + one-line message)."""

    entry: InventoryEntry
    result: RotationResult | None = None
    error_code: str | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.entry.name,
            "destination": str(self.entry.destination),
            "preset": self.entry.preset,
            "keeper": self.entry.keeper,
            "target": self.entry.target_kind,
            "seconds": round(self.seconds, 4),
        }
        if self.result is not None:
            out.update(self.result.public_dict())
        else:
            out.update(status="failed", error={"code": self.error_code, "message": self.error})
        return out


class _Stores:
    """One store connection per (thread, scheme): SDK clients are not shared across threads."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[SecretStore] = []
        self._lock = threading.Lock()

    def get(self, uri: StoreURI) -> SecretStore:
        from ..stores import open_store

        cache: dict[str, SecretStore] = self._local.__dict__.setdefault("stores", {})
        scheme = uri.scheme
        if scheme not in cache:
            store = open_store(uri)
            cache[scheme] = store
            with self._lock:
                self._all.append(store)
        return cache[scheme]

    def close(self) -> None:
        for store in self._all:
            try:
                store.close()
            except Exception:  # noqa: S112 - closing is best effort
                continue


def _outcome(entry: InventoryEntry, result: object, seconds: float) -> Outcome:
    from ..workflows import RotationResult

    if isinstance(result, RotationResult):
        return Outcome(entry, result=result, seconds=seconds)
    if isinstance(result, PassgeniError):
        return Outcome(entry, error_code=result.code, error=result.message, seconds=seconds)
    # A backend's bug must not stop the other entries, nor leak its message.
    return Outcome(
        entry,
        error_code="internal_error",
        error=f"unexpected {type(result).__name__}",
        seconds=seconds,
    )


def rotate_all(
    client: AuthorityClient,
    entries: list[InventoryEntry],
    *,
    concurrency: int = 8,
    dry_run: bool = False,
    on_done: Callable[[Outcome], None] | None = None,
    chunk_size: int | None = None,
) -> list[Outcome]:
    """Run every entry (batched, ``concurrency`` writes at a time); outcomes in inventory order.

    See :func:`passgeni_core.workflows.rotate_many`. An outcome's ``seconds``
    is the time from the start of the run until that entry finished.
    """
    from ..workflows import DEFAULT_CHUNK, rotate_many

    stores = _Stores()
    began = time.perf_counter()
    outcomes: list[Outcome | None] = [None] * len(entries)

    def done(index: int, result: object) -> None:
        outcome = _outcome(entries[index], result, time.perf_counter() - began)
        outcomes[index] = outcome
        if on_done is not None:
            on_done(outcome)

    try:
        results = rotate_many(
            client,
            entries,
            store_for=stores.get,
            concurrency=max(1, concurrency),
            chunk_size=chunk_size or DEFAULT_CHUNK,
            dry_run=dry_run,
            on_done=done,
        )
    finally:
        stores.close()
    return [
        o if o is not None else _outcome(entries[i], results[i], time.perf_counter() - began)
        for i, o in enumerate(outcomes)
    ]


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[Outcome], None]]:
    if not enabled:
        yield lambda outcome: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]rotating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("rotate", total=total, failed=0)
        failed = 0

        def advance(outcome: Outcome) -> None:
            nonlocal failed
            failed += outcome.failed
            progress.update(task, advance=1, failed=failed)

        yield advance


def _summary(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        status = "failed" if o.result is None else o.result.status
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def _print_table(outcomes: list[Outcome], summary: dict[str, int], dry_run: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    title = "passgeni rotate" + (" (dry run: nothing written)" if dry_run else "")
    table = Table(title=title, show_lines=False)
    for column in ("NAME", "DESTINATION", "STATUS", "CERTIFICATE", "DETAIL"):
        table.add_column(column, overflow="fold")
    styles = {"failed": "red", "unchanged": "dim", "rotated": "green", "created": "green"}
    for o in outcomes:
        status = "failed" if o.result is None else o.result.status
        detail = (
            f"[{o.error_code}] {o.error}"
            if o.failed
            else "; ".join(o.result.warnings)
            if o.result is not None and o.result.warnings
            else ""
        )
        table.add_row(
            o.entry.name,
            str(o.entry.destination),
            f"[{styles.get(status, '')}]{status}[/]" if styles.get(status) else status,
            (o.result.cert_id or "") if o.result is not None else "",
            detail,
        )
    console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in summary.items()))


@contextmanager
def _pooled_session(concurrency: int) -> Iterator[Any]:
    """A keep-alive session for the authority with a connection per worker thread (and one more
    for the batches): requests keeps only 10 per host by default."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    size = max(10, concurrency + 1)
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size))
    try:
        yield session
    finally:
        session.close()


def _cmd_rotate(args: argparse.Namespace) -> int:
    from ..client import connect
    from ._output import print_json

    if args.concurrency < 1 or args.concurrency > 256:
        raise InvalidRequest("--concurrency must be between 1 and 256")
    entries = load_inventory(Path(args.inventory), epoch=args.epoch)
    config = authority_config(args).require_authority()
    show_progress = not args.no_progress
    with (
        _pooled_session(args.concurrency) as session,
        connect(config, session=session) as client,
        _progress(len(entries), show_progress) as advance,
    ):
        outcomes = rotate_all(
            client,
            entries,
            concurrency=args.concurrency,
            dry_run=args.dry_run,
            on_done=advance,
        )
    summary = _summary(outcomes)
    failed = summary.get("failed", 0)
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "summary": summary,
                "failed": failed,
                "results": [o.to_dict() for o in outcomes],
            }
        )
    else:
        _print_table(outcomes, summary, args.dry_run)
    if failed:
        print(
            f"passgeni: {failed} of {len(outcomes)} rotation(s) failed; re-run the same command "
            "to resume (rotated entries are skipped)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rotate",
        help="rotate many credentials from an inventory (concurrent, resumable)",
        description=(
            "Rotate every credential of a YAML inventory into its store (and apply it to its "
            "PostgreSQL role, if any). Resumable: entries already rotated for the epoch are "
            "skipped. Exit 4 if any entry failed."
        ),
    )
    p.add_argument("--inventory", required=True, metavar="FILE.yaml", help="the inventory")
    p.add_argument("--epoch", help="rotation epoch (keeper) overriding the inventory's 'epoch'")
    p.add_argument("--dry-run", action="store_true", help="read only: show what would change")
    p.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="entries in flight (default 8)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--issuer", help="the certificates' issuer, if not the authority URL")
    add_connection_options(p)
    p.set_defaults(handler=_cmd_rotate)
