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
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._errors import (
    AuthorityUnavailable,
    InvalidParameters,
    InvalidRequest,
    InvalidStoreURI,
    InvalidToken,
    PassgeniError,
    StoreUnavailable,
)
from .._untrusted import printable
from . import (
    _auditor,
    _basic,
    _export_cmd,
    _log_cmd,
    _provenance_cmd,
    _remote,
    _rotate,
    _stores_cmds,
)
from ._output import print_json, print_kv, print_table
from ._rotate import load_inventory, rotate_all

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "exit_code_for",
    "load_inventory",
    "main",
    "print_json",
    "print_kv",
    "print_table",
    "rotate_all",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ERROR = 4

#: Modules that add subcommands: each has ``register(subparsers)``.
_COMMAND_MODULES: list[Callable[[Any], None]] = [
    _basic.register,
    _remote.register,
    _stores_cmds.register,  # after _remote: adds --store to its provision
    _rotate.register,
    _auditor.register,  # policy, registry, evidence, status-list
    _provenance_cmd.register,
    _log_cmd.register,  # log verify, log monitor
    _export_cmd.register,  # export in-toto
]

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


def _add_plugins(sub: Any, argv: Sequence[str]) -> None:
    wanted = _command_of(argv)
    builtin = set(sub.choices)
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


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="passgeni",
        description="Password compliance certificates: generate locally, certify, verify.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"passgeni {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for register in _COMMAND_MODULES:
        register(sub)
    _add_plugins(sub, sys.argv[1:] if argv is None else argv)
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
