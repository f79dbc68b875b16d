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
from typing import Any

from .._errors import (
    AuthorityUnavailable,
    InvalidParameters,
    InvalidRequest,
    InvalidStoreURI,
    InvalidToken,
    PassgeniError,
    StoreUnavailable,
)
from . import _basic

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "exit_code_for", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_ERROR = 4

#: Modules that add subcommands: each has ``register(subparsers)``.
_COMMAND_MODULES: list[Callable[[Any], None]] = [
    _basic.register,
]


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
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse prints usage plus the message; keep it to one clear line.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PassgeniError as exc:
        print(f"passgeni: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("passgeni: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
