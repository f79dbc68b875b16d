"""The rig of the secret-leak hunt: real servers, an authority at DEBUG behind a recording
proxy, and a private HOME, each flow's output kept in ``Rig.captures``.

The flows and the checks are in ``test_no_secret_leaks.py``; its module takes
the ``rig`` fixture with ``from tests.reliability._leak_rig import *``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability._proxy import TcpProxy
from tests.support import (
    REPO_ROOT,
    KubeEmulator,
    MotoServer,
    OpenBaoServer,
    free_port,
    http_status,
    wait_until,
)

#: What ``import *`` brings: the fixture (the rest is imported by name).
__all__ = ["rig"]

ROOT = REPO_ROOT

# Every logger at DEBUG, to stderr, then the real entry point.
DEBUG_PRELUDE = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, "
    "format='%(asctime)s %(name)s %(levelname)s %(message)s'); "
)
CLI = DEBUG_PRELUDE + "from passgeni_core.cli import main; sys.exit(main(sys.argv[1:]))"
AUTHORITY = DEBUG_PRELUDE + "from passgeni_authority.cli import main; sys.exit(main(sys.argv[1:]))"
TERRAFORM = DEBUG_PRELUDE + "from terraform_external import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class Rig:
    """The servers, the environment every flow runs with, and what was captured."""

    tmp: Path
    home: Path
    env: dict[str, str]
    proxy: TcpProxy
    api_key: str
    state_dir: Path
    authority_log: Path
    bao: OpenBaoServer
    moto: MotoServer
    kube: KubeEmulator
    captures: dict[str, bytes] = field(default_factory=dict)
    credentials: list[str] = field(default_factory=list)  # store URIs written
    flows: list[str] = field(default_factory=list)

    def run(
        self,
        name: str,
        argv: list[str],
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.tmp,
            timeout=180,
            check=False,
        )
        self.captures[f"{name} stdout"] = proc.stdout.encode()
        self.captures[f"{name} stderr"] = proc.stderr.encode()
        assert proc.returncode == 0, (
            f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
        )
        return proc


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("leaks")
    home = tmp / "home"
    for sub in ("", ".config", ".local/share", ".cache", ".local/state"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    state_dir = tmp / "authority"
    port = free_port()
    with contextlib.ExitStack() as stack:
        bao = stack.enter_context(OpenBaoServer())
        moto = stack.enter_context(MotoServer())
        kube = stack.enter_context(KubeEmulator())
        proxy = stack.enter_context(TcpProxy(port, record=True))
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PASSGENI_", "VAULT_", "AWS_", "ANSIBLE_", "KUBE", "XDG_"))
        }
        authority_env = {**base_env, "HOME": str(tmp / "authority-home"), "PYTHONUNBUFFERED": "1"}
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "passgeni_authority",
                "create-key",
                "--state-dir",
                str(state_dir),
                "--user",
                "leaks",
                "--rate-limit",
                "100000",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=authority_env,
            cwd=ROOT,
            timeout=120,
            check=True,
        )
        api_key = json.loads(created.stdout)["api_key"]
        authority_log = tmp / "authority.log"
        with authority_log.open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    AUTHORITY,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--state-dir",
                    str(state_dir),
                    "--public-url",
                    proxy.url,
                    "--log-level",
                    "debug",
                    "--no-fips-strict",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=authority_env,
                cwd=ROOT,
                start_new_session=True,
            )
        stack.callback(lambda: (server.terminate(), server.wait(timeout=15)))
        wait_until(
            lambda: http_status(f"{proxy.url}/healthz", timeout=1.0) == 200,
            60.0,
            "authority behind the proxy",
            log_path=authority_log,
            process=server,
        )
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "emu",
                    "clusters": [{"name": "emu", "cluster": {"server": kube.url}}],
                    "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}],
                    "users": [{"name": "emu", "user": {}}],
                }
            )
        )
        env = {
            **base_env,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "TMPDIR": str(home / "tmp"),
            "PASSGENI_URL": proxy.url,
            "PASSGENI_ISSUER": proxy.url,
            "PASSGENI_API_KEY": api_key,
            "VAULT_ADDR": bao.url,
            "VAULT_TOKEN": bao.token,
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_REGION": moto.region,
            "AWS_DEFAULT_REGION": moto.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "KUBECONFIG": str(kubeconfig),
            "PYTHONUNBUFFERED": "1",
        }
        (home / "tmp").mkdir()
        yield Rig(tmp, home, env, proxy, api_key, state_dir, authority_log, bao, moto, kube)
