"""The ``passgeni`` command line.

An edge of the system: it reads flags, the environment and files, builds core
objects, makes one core call per command and turns errors into a one-line
message on stderr with a non-zero exit (never a traceback). Every command that
prints a result takes ``--json``.

Exit codes: 0 success; 1 the checked thing is invalid (verification failed,
coverage short of a requirement); 2 bad input or usage; 3 a service (authority,
store) is unavailable; 4 any other PassGeni error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from .._errors import (
    AuthorityUnavailable,
    InvalidParameters,
    InvalidRequest,
    InvalidStoreURI,
    InvalidToken,
    PassgeniError,
    StoreUnavailable,
)
from .._lazy import lazy_exports
from .._untrusted import printable

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ERROR = 4

# Names other packages use, loaded on first use (``_rotate`` needs the workflows).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "._output": ("print_json", "print_kv", "print_table"),
        "._rotate": ("load_inventory", "rotate_all"),
    },
    extra=(
        "EXIT_INVALID",
        "EXIT_OK",
        "EXIT_UNAVAILABLE",
        "EXIT_USAGE",
        "build_parser",
        "exit_code_for",
        "main",
    ),
)

if TYPE_CHECKING:
    from ._output import (
        print_json as print_json,
        print_kv as print_kv,
        print_table as print_table,
    )
    from ._rotate import load_inventory as load_inventory, rotate_all as rotate_all

#: The modules that add subcommands (each has ``register(subparsers)``), in the
#: order they register: ``_stores_cmds`` after ``_remote``, as it adds ``--store``
#: to ``_remote``'s provision.
_MODULES = (
    "_basic",
    "_remote",
    "_stores_cmds",
    "_rotate",
    "_auditor",  # policy, registry, evidence, status-list
    "_provenance_cmd",
    "_log_cmd",  # log verify, log monitor
    "_export_cmd",  # export in-toto
)

#: Every built-in command: the modules that build it and its line in ``passgeni --help``.
#: Only the invoked command's modules are imported (they import the HTTP, JWT and store
#: stacks): a process that runs ``presets`` never loads requests or cryptography. The
#: help lines must equal the ones the modules register (a unit test compares them).
_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "presets": (("_basic",), "list the compliance presets and what they require"),
    "generate": (
        ("_basic",),
        "generate a password locally (zero-knowledge: no server, nothing sent)",
    ),
    "verify": (
        ("_remote",),
        "verify a certificate: offline by JWKS; by URL or id from the authority",
    ),
    "provision": (
        ("_remote", "_stores_cmds"),
        "generate a password locally and certify it with the authority",
    ),
    "revoke": (("_remote",), "revoke a certificate (the record stays, status changes)"),
    "audit": (("_remote",), "list your certificates (team-wide for team keys)"),
    "scan": (
        ("_stores_cmds",),
        "coverage of stored credentials: valid, expiring, expired, revoked, drifted...",
    ),
    "prove": (
        ("_stores_cmds",),
        "prove a stored credential is exactly the certified, machine-generated one",
    ),
    "rotate": (
        ("_rotate",),
        "rotate many credentials from an inventory (concurrent, resumable)",
    ),
    "policy": (
        ("_auditor",),
        "write the password policy document for chosen standards (md, html, pdf)",
    ),
    "registry": (
        ("_auditor",),
        "credential -> certificate registry: CSV, JSON or an .ics expiry calendar",
    ),
    "evidence": (
        ("_auditor",),
        "write an evidence bundle an auditor verifies offline; `evidence verify` checks one",
    ),
    "status-list": (("_auditor",), "signed revocation status lists (offline revocation)"),
    "provenance": (
        ("_provenance_cmd",),
        "write a certificate's provenance record for an auditor (md, html, pdf)",
    ),
    "log": (
        ("_log_cmd",),
        "check the authority's transparency log (inclusion of a certificate, consistency)",
    ),
    "export": (
        ("_export_cmd",),
        "export a certificate for other tools: in-toto (a DSSE envelope)",
    ),
}

#: Entry-point group of plugin commands (e.g. ``authority`` from passgeni[authority]).
#: Each entry point is a ``register(subparsers)`` function; its name should be the
#: command it adds, so only the plugin actually invoked is imported.
PLUGIN_GROUP = "passgeni.cli"


def _plugin_entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    try:
        return sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name)
    except Exception:  # a corrupt installed distribution must not break the core CLI
        return []


def _load_plugin(ep: Any, sub: Any) -> str | None:
    """Import and register one plugin; returns a one-line reason on failure."""
    try:
        register = ep.load()
        register(sub)
    except Exception as exc:  # plugins are third-party code: never a traceback
        detail = " ".join(str(exc).split())[:200]
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return None


def _command_of(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _add_plugins(sub: Any, wanted: str | None) -> None:
    builtin = set(_COMMANDS)
    if wanted in builtin:
        # Scanning the installed distributions' entry points is slow (tens of ms):
        # a built-in command needs no plugin, not even as a placeholder.
        return
    plugins = _plugin_entry_points()
    # A plugin named like the command is the only one imported (each imports its own
    # stack: `passgeni terraform ...` does not need the authority's web framework).
    named = wanted is not None and any(ep.name == wanted for ep in plugins)
    for ep in plugins:
        if ep.name in builtin:
            continue
        if wanted is not None and (wanted == ep.name or (wanted not in builtin and not named)):
            failure = _load_plugin(ep, sub)
            if failure is None:
                continue
            if wanted == ep.name:
                print(
                    f"passgeni: error [plugin_error]: command {ep.name!r} ({ep.value}) "
                    f"failed to load: {failure}",
                    file=sys.stderr,
                )
                sys.exit(EXIT_ERROR)
            continue
        if ep.name not in sub.choices:
            # A placeholder keeps `passgeni --help` fast and listing the command.
            sub.add_parser(ep.name, help=f"(plugin {ep.value.split(':')[0]})", add_help=False)


def _add_commands(sub: Any, wanted: str | None, *, complete: bool) -> None:
    """Register the invoked built-in command for real, every other one as a placeholder."""
    needed = set(_MODULES) if complete else set(_COMMANDS.get(wanted or "", ((), ""))[0])
    for name in _MODULES:
        if name in needed:
            importlib.import_module(f".{name}", __name__).register(sub)
    for command, (_, line) in _COMMANDS.items():
        if command not in sub.choices:
            # Listed by `passgeni --help`; the invoked command is always built in full.
            sub.add_parser(command, help=line, add_help=False)


def exit_code_for(error: PassgeniError) -> int:
    """The process exit code for an error (documented in the module docstring)."""
    if isinstance(error, InvalidToken):
        return EXIT_INVALID
    if isinstance(error, InvalidParameters | InvalidRequest | InvalidStoreURI):
        return EXIT_USAGE
    if isinstance(error, AuthorityUnavailable | StoreUnavailable):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage plus the message; keep it to one clear line.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(
    argv: Sequence[str] | None = None, *, complete: bool = False
) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default ``sys.argv[1:]``).

    Only the command ``argv`` invokes is built in full (and its modules imported);
    the others are placeholders that ``passgeni --help`` lists. ``complete`` builds
    every built-in command in full (for tests and documentation).
    """
    parser = _Parser(
        prog="passgeni",
        description="Password compliance certificates: generate locally, certify, verify.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"passgeni {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    args = sys.argv[1:] if argv is None else argv
    wanted = _command_of(args)
    _add_commands(sub, wanted, complete=complete)
    _add_plugins(sub, wanted)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        print(f"passgeni: error: command {args.command!r} is not available", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except PassgeniError as exc:
        print(f"passgeni: error [{exc.code}]: {printable(exc.message)}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("passgeni: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
