"""Build the rotation Lambda: a deployable zip and its CloudFormation template.

``python -m vault_plugin_helper.lambda_build --out DIR [--arch x86_64|arm64]
[--python 3.11] [--with-boto3]`` writes

``DIR/passgeni-rotation.zip``
    ``passgeni_core`` and ``vault_plugin_helper`` as installed here, a
    ``passgeni_rotation-VERSION.dist-info`` declaring the ``passgeni.targets``
    and ``passgeni.stores`` entry points (so the handler finds the PostgreSQL
    target as an installed passgeni does), and the runtime dependencies
    (passgeni's own and its ``postgres`` extra, pinned to the versions
    installed here when they are) as manylinux wheels for the Lambda's
    architecture and Python, installed by ``pip --target``. boto3 comes from
    the Lambda runtime unless ``--with-boto3``. Entries are sorted and dated
    1980-01-01: the same inputs give the same bytes.
``DIR/template.json``
    the function (handler ``vault_plugin_helper.rotation.handler``), its role
    with a least-privilege policy, the Lambda permission for
    ``secretsmanager.amazonaws.com`` and the rotation schedule (see
    :mod:`._lambda_template`). Upload the zip to S3, then deploy with
    ``aws cloudformation deploy --template-file DIR/template.json
    --parameter-overrides SecretArn=... CodeBucket=... AuthorityUrl=...
    --capabilities CAPABILITY_IAM``.

Needs pip and a package index that serves those wheels; nothing else of the
build machine ends up in the zip.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from ._lambda_template import HANDLER, rotation_template

__all__ = ["ZIP_NAME", "build", "main", "requirements"]

ZIP_NAME = "passgeni-rotation.zip"
TEMPLATE_NAME = "template.json"
_PACKAGES = ("passgeni_core", "vault_plugin_helper")
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(?:;\s*(.*))?$")
_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Not needed by the handler: bytecode, and the auditor's PDF fonts (megabytes).
_NOT_SHIPPED = ("__pycache__", "*.pyc", "fonts")
_ENTRY_POINTS = """[passgeni.targets]
postgresql = vault_plugin_helper.targets:PostgresTarget

[passgeni.stores]
aws-sm = vault_plugin_helper.aws:SecretsManagerStore
"""


class BuildError(Exception):
    """The build could not be made (one line, shown as is)."""


def _version() -> str:
    try:
        return metadata.version("passgeni")
    except metadata.PackageNotFoundError:
        return "0"


def requirements(*, with_boto3: bool = False) -> list[str]:
    """passgeni's runtime requirements (and its ``postgres`` extra, ``aws`` with boto3),
    pinned to the installed version where one is installed."""
    try:
        declared = metadata.requires("passgeni") or []
    except metadata.PackageNotFoundError:
        raise BuildError("passgeni is not installed here (pip install passgeni[aws])") from None
    extras = {"postgres"} | ({"aws"} if with_boto3 else set())
    out: list[str] = []
    for line in declared:
        match = _REQUIREMENT.match(line)
        if match is None:
            continue
        name, extra, spec, marker = match.groups()
        if marker:
            wanted = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
            if wanted is None or wanted.group(1) not in extras:
                continue
        with contextlib.suppress(metadata.PackageNotFoundError):
            spec = "==" + metadata.version(name)
        out.append(f"{name}{extra or ''}{spec}")
    return sorted(set(out))


def _pip_install(target: Path, reqs: Sequence[str], arch: str, python: str) -> None:
    platform = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}[arch]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(target), "--only-binary=:all:",
        "--platform", platform, "--python-version", python, "--implementation", "cp",
        *reqs,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or ["pip failed"]
        raise BuildError(f"vendoring the dependencies failed: {lines[-1][:300]}")


def _copy_packages(stage: Path) -> None:
    import importlib

    for name in _PACKAGES:
        source = Path(importlib.import_module(name).__file__ or "").parent
        shutil.copytree(source, stage / name, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    info = stage / f"passgeni_rotation-{_version()}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: passgeni-rotation\nVersion: {_version()}\n"
    )
    (info / "entry_points.txt").write_text(_ENTRY_POINTS)
    (info / "RECORD").write_text("")


def _files(stage: Path) -> Iterable[Path]:
    for path in sorted(stage.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _zip(stage: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(stage):
            entry = zipfile.ZipInfo(path.relative_to(stage).as_posix(), date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())


def build(
    out: Path, *, arch: str = "x86_64", python: str = "3.11", with_boto3: bool = False
) -> tuple[Path, Path]:
    """Write the zip and the template into ``out``; return their paths."""
    if arch not in ("x86_64", "arm64"):
        raise BuildError("--arch is x86_64 or arm64")
    if not re.fullmatch(r"3\.\d{1,2}", python):
        raise BuildError("--python is a version such as 3.11")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="passgeni-lambda-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        _pip_install(stage, requirements(with_boto3=with_boto3), arch, python)
        shutil.rmtree(stage / "bin", ignore_errors=True)  # console scripts: not for Lambda
        for name in _PACKAGES:
            shutil.rmtree(stage / name, ignore_errors=True)
        _copy_packages(stage)
        zip_path = out / ZIP_NAME
        _zip(stage, zip_path)
    template_path = out / TEMPLATE_NAME
    template = rotation_template(architecture=arch, runtime=f"python{python}")
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    return zip_path, template_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vault_plugin_helper.lambda_build",
        description="Build the PassGeni rotation Lambda zip and its CloudFormation template.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"])
    parser.add_argument("--python", default="3.11", help="the Lambda runtime's Python (3.11)")
    parser.add_argument(
        "--with-boto3", action="store_true", help="bundle boto3 instead of the runtime's"
    )
    args = parser.parse_args(argv)
    try:
        zip_path, template_path = build(
            args.out, arch=args.arch, python=args.python, with_boto3=args.with_boto3
        )
    except BuildError as exc:
        print(f"lambda_build: error: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    size = zip_path.stat().st_size
    print(f"{zip_path}  {size} bytes  sha256 {digest}")
    print(f"{template_path}  handler {HANDLER}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
