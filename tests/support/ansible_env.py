"""A clean environment for ``ansible-*`` commands, shared by the collection's tests and bench.

No user or system configuration applies (an empty ``ansible.cfg`` and PassGeni config file),
no colour, pipelining on, this Python as the interpreter, and no ``ANSIBLE_``/``PASSGENI_``/
``VAULT_``/``AWS_`` variable of the caller leaks in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def base_env(workdir: Path, collections: Path | None) -> dict[str, str]:
    """A clean environment for ansible-* commands: no user config, no colour, our Python."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "PASSGENI_", "VAULT_", "AWS_"))
    }
    home = workdir / "ansible-home"
    home.mkdir(exist_ok=True)
    # An empty PassGeni config file: the user's own (~/.config/passgeni) must not leak in.
    passgeni_config = workdir / "passgeni-config.toml"
    passgeni_config.touch()
    # An empty ansible.cfg: no user or system configuration applies.
    ansible_cfg = workdir / "ansible.cfg"
    ansible_cfg.write_text("[defaults]\n")
    env.update(
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "remote-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PIPELINING="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_CONFIG=str(ansible_cfg),
        PASSGENI_CONFIG=str(passgeni_config),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    if collections is not None:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    return env
