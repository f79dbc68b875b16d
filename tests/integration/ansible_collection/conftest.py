"""Fixtures for the passgeni.compliance collection tests.

The collection is built with ``ansible-galaxy collection build`` and installed with
``ansible-galaxy collection install`` into a temporary collections path, once per
session, exactly as a user would consume it; ``ansible-playbook`` and
``ansible-doc`` then run as real subprocesses with ``ANSIBLE_COLLECTIONS_PATH``
pointing at that installation.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import REPO_ROOT
from tests.support.ansible_env import base_env

REPO = REPO_ROOT
SOURCE = REPO / "ansible_collection"
BIN = Path(sys.executable).parent


def ansible_bin(name: str) -> str:
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        # make test installs ansible-core; a missing one is a broken set-up, not a skip.
        pytest.fail(f"{name} is not installed (pip install 'passgeni[ansible]')")
    return found


@pytest.fixture(scope="session")
def collection_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ansible")


@pytest.fixture(scope="session")
def installed_collection(collection_workdir: Path) -> Path:
    """Build the collection tarball and install it; returns the collections path."""
    dist = collection_workdir / "dist"
    dest = collection_workdir / "collections"
    dist.mkdir()
    env = base_env(collection_workdir, None)
    _galaxy(env, "build", str(SOURCE), "--output-path", str(dist))
    (tarball,) = dist.glob("passgeni-compliance-*.tar.gz")
    _galaxy(env, "install", str(tarball), "-p", str(dest))
    assert (dest / "ansible_collections" / "passgeni" / "compliance" / "MANIFEST.json").is_file()
    return dest


def _galaxy(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [ansible_bin("ansible-galaxy"), "collection", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"ansible-galaxy collection {args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    )


@pytest.fixture(scope="session")
def ansible_env(collection_workdir: Path, installed_collection: Path) -> dict[str, str]:
    return base_env(collection_workdir, installed_collection)


@pytest.fixture(scope="session")
def authority(collection_workdir: Path) -> Iterator[Any]:
    """A real authority served over HTTP by uvicorn on 127.0.0.1 (``base_url``, ``api_key``)."""
    from passgeni_authority.embedded import EmbeddedAuthority

    with EmbeddedAuthority(
        state_dir=collection_workdir / "authority", issuer_is_base_url=True
    ) as served:
        yield served


def run_playbook(
    env: dict[str, str],
    playbook: Path,
    *args: str,
    extra_env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook -i localhost, PLAYBOOK ARGS`` as a real subprocess."""
    proc = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", "localhost,", str(playbook), *args],
        capture_output=True,
        text=True,
        env={**env, **(extra_env or {})},
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, f"ansible-playbook failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counters of localhost."""
    match = re.search(r"^localhost\s+:\s+(.*)$", output, re.MULTILINE)
    assert match, f"no PLAY RECAP in:\n{output}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}
