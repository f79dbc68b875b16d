"""What a CLI process imports: the start-up cost users feel (issue #19 item 6).

A command loads only what it uses. Each case runs the real CLI in a fresh
interpreter and reads ``sys.modules`` afterwards, so a module-level import
that drags the HTTP, JWT or store stacks into ``presets`` fails here
deterministically (the timings are in ``bench/bench_cli.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from passgeni_core import cli
from tests.support import REPO_ROOT

from .test_verify import ISSUER, Keys

# Runs main(argv) and writes the names in sys.modules to a file (stdout is the command's).
_PROBE = (
    "import json, sys\n"
    "from passgeni_core.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[2:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "open(sys.argv[1], 'w').write(json.dumps(sorted(sys.modules)))\n"
    "sys.exit(code)\n"
)

#: Never needed without a network: the HTTP stack, the store SDKs, the HTTP client.
NETWORK = (
    "requests",
    "urllib3",
    "hvac",
    "boto3",
    "botocore",
    "kubernetes",
    "passgeni_core.client._client",
    "passgeni_core.workflows",
    "passgeni_core.stores",
)
#: Not needed to list or generate: the JWS stack, the entry-point scan.
CRYPTO = ("jwt", "cryptography", "importlib.metadata", "passgeni_core.crypto._verify")


def _loaded(tmp_path: Path, *argv: str) -> tuple[set[str], str]:
    record = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(record), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(record.read_text())), done.stdout


def _offenders(loaded: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == b or m.startswith(b + ".") for b in banned))


@pytest.mark.parametrize(
    "argv",
    [("presets",), ("presets", "--json"), ("generate", "--preset", "soc2")],
)
def test_local_commands_load_neither_network_nor_jws_stack(
    tmp_path: Path, argv: tuple[str, ...]
) -> None:
    loaded, _ = _loaded(tmp_path, *argv)
    allowed_for_generate = ("importlib.metadata",)  # the breach list's version (zxcvbn's)
    banned = tuple(
        b for b in NETWORK + CRYPTO if argv[0] != "generate" or b not in allowed_for_generate
    )
    assert _offenders(loaded, banned) == []
    # Nor any other command's module.
    assert _offenders(loaded, tuple(f"passgeni_core.cli.{m}" for m in cli._MODULES[1:])) == []


def test_offline_verify_loads_the_jws_stack_only(tmp_path: Path) -> None:
    keys = Keys()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keys.jwks))
    token = tmp_path / "cert.jwt"
    token.write_text(keys.sign())
    loaded, out = _loaded(
        tmp_path, "verify", f"@{token}", "--jwks", str(jwks), "--issuer", ISSUER, "--at-issuance"
    )
    assert "VALID" in out
    assert _offenders(loaded, (*NETWORK, "importlib.metadata")) == []
    assert {"jwt", "cryptography"} <= loaded


def test_help_lists_every_command_without_importing_one(tmp_path: Path) -> None:
    loaded, out = _loaded(tmp_path, "--help")
    assert _offenders(loaded, NETWORK + CRYPTO[:2]) == []
    assert _offenders(loaded, tuple(f"passgeni_core.cli.{m}" for m in cli._MODULES)) == []
    listed = set(re.findall(r"^    (\S+)", out, re.MULTILINE))
    assert set(cli._COMMANDS) <= listed


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_command_table_matches_what_the_modules_register() -> None:
    # The lazy table stands in for the modules in `passgeni --help`: it must say the same.
    registered = _subcommands(cli.build_parser([], complete=True))
    builtin = {k: v for k, v in registered.items() if not (v or "").startswith("(plugin ")}
    assert builtin == {name: line for name, (_, line) in cli._COMMANDS.items()}
    lazy = _subcommands(cli.build_parser([]))
    assert {k: lazy[k] for k in builtin} == builtin


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_each_command_is_built_in_full_when_invoked(command: str) -> None:
    parser = cli.build_parser([command, "--help"])
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub.choices[command].add_help  # a placeholder has none


def test_docs_cli_lists_every_builtin_command() -> None:
    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    table = text.split("## Connecting to the authority")[0]
    named = set(re.findall(r"`([a-z-]+)[ `]", table))
    assert set(cli._COMMANDS) - named == set()
