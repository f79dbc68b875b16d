"""Run the example playbook against the `make demo` environment.

Starts what `make demo` starts (the embedded authority served over HTTP, a
local OpenBao dev server for the Vault API, moto for the AWS Secrets Manager
API), builds the passgeni.compliance collection with ``ansible-galaxy
collection build`` and installs it into a temporary collections path, then
runs ``playbook.yml`` twice: the first run provisions, the second reports
``changed=0``. Everything is stopped and removed at the end.

    .venv/bin/python examples/ansible/run.py            # the two runs
    .venv/bin/python examples/ansible/run.py --serve    # keep it up; prints the
                                                        # variables to run ansible-playbook yourself
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(
    0, str(ROOT)
)  # the test fixtures' server runners are reused, as in examples/demo.py
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        sys.exit(f"{name} not found next to {sys.executable}: run `make venv` first")
    return str(path)


def install_collection(tmp: Path, env: dict[str, str]) -> Path:
    dist, dest = tmp / "dist", tmp / "collections"
    subprocess.run(
        [
            tool("ansible-galaxy"),
            "collection",
            "build",
            str(ROOT / "ansible_collection"),
            "--output-path",
            str(dist),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    tarball = next(dist.glob("passgeni-compliance-*.tar.gz"))
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(dest)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep the servers up until Ctrl-C")
    args = parser.parse_args()

    from passgeni_authority.embedded import EmbeddedAuthority
    from tests.support import MotoServer, OpenBaoServer

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="passgeni-ansible-")))
        # The authority's served address is the issuer, so certificate URLs resolve while it runs.
        authority = stack.enter_context(
            EmbeddedAuthority(state_dir=tmp / "authority", issuer_is_base_url=True)
        )
        bao = stack.enter_context(OpenBaoServer())
        moto = stack.enter_context(MotoServer())
        (tmp / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = False\n")
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
            ANSIBLE_LOCALHOST_WARNING="0",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        )
        env["ANSIBLE_COLLECTIONS_PATH"] = str(install_collection(tmp, env))
        connection = {
            "PASSGENI_URL": authority.base_url,
            "PASSGENI_API_KEY": authority.api_key,
            "VAULT_ADDR": bao.url,
            "VAULT_TOKEN": bao.token,
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
        }
        env.update(connection)
        command = [tool("ansible-playbook"), "-i", "localhost,", str(HERE / "playbook.yml")]
        if args.serve:
            print(
                "The demo environment is up. In another shell (keep these secret in real life):\n"
            )
            for key in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_PYTHON_INTERPRETER", *connection):
                print(f"export {key}={shlex.quote(env[key])}")
            print(f"\n{shlex.join(command)}\n\nCtrl-C stops everything.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    input()
            return 0
        for run in ("first run: provisions", "second run: nothing to change"):
            print(f"\n===== {run} =====", flush=True)
            subprocess.run(command, check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
