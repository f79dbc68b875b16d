"""The provider's other components and modes with real Terraform: the ephemeral resource, the
certificate data source, the documented example, ``serve-provider``, Kubernetes, refusals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.terraform_external.provider_rig import (
    PROVIDER,
    cli_config,
    instance,
    no_traceback,
    secret_needles,
    terraform_files,
    tf,
    vault_version,
    vault_versions,
)
from tests.integration.vault_plugin_helper.fixtures import Authority, authority, uid  # noqa: F401
from tests.support import REPO_ROOT, OpenBaoServer
from tests.support.proofs import k8s_proof
from tests.support.terraform import Terraform, find_in_files

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

_FIXTURES = (cli_config, tf)  # imported for pytest


def test_ephemeral_credential_reaches_a_provisioner_and_never_the_state(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    path = f"tf/{uid}"
    out = tf.workdir / "digest.txt"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}

data "passgeni_certificate" "db" {{
  cert_id = passgeni_credential.db.cert_id
  require = "soc2"
}}

ephemeral "passgeni_credential" "db" {{
  destination = passgeni_credential.db.destination
  preset      = "soc2"
  cert_id     = passgeni_credential.db.cert_id
}}

resource "terraform_data" "consumer" {{
  triggers_replace = [passgeni_credential.db.cert_id]
  provisioner "local-exec" {{
    command     = "printf %s \\"$P\\" | sha256sum | cut -d' ' -f1 > {out}"
    environment = {{ P = ephemeral.passgeni_credential.db.password }}
  }}
}}

output "certificate_status" {{
  value = data.passgeni_certificate.db.status
}}
"""
    )
    tf("init").ok()
    log = tf.workdir.parent / "terraform-trace.log"
    # The provider's stderr lands in Terraform's log: the most verbose of both.
    tf.env.update(
        TF_LOG="TRACE", TF_LOG_PATH=str(log), PYVIDER_LOG_LEVEL="DEBUG", PROVIDE_LOG_LEVEL="DEBUG"
    )
    tf("apply", "-auto-approve").ok()
    import hashlib

    stored = list(vault_versions(openbao, path))[-1]
    assert out.read_text().strip() == hashlib.sha256(stored["password"].encode()).hexdigest()
    outputs = json.loads(tf("output", "-json").ok().stdout)
    assert outputs["certificate_status"]["value"] == "valid"
    tf("plan", "-out=again.tfplan").ok()
    needles = secret_needles(list(vault_versions(openbao, path)))
    assert find_in_files(terraform_files(tf), needles) == []
    text = log.read_text()
    assert "OpenEphemeralResource" in text  # the log did record the provider's work
    assert "[debug" in text  # at the provider's most verbose
    assert find_in_files([log], needles) == []


def test_the_example_applies_as_documented(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    example = REPO_ROOT / "examples" / "terraform" / "main.tf"
    tf.write(example.read_text())
    path = f"tf-example/{uid}"
    var = f"-var=vault_path=secret/{path}"
    tf("init").ok()
    tf("validate").ok()
    tf("apply", "-auto-approve", var).ok()
    outputs = json.loads(tf("output", "-json").ok().stdout)
    assert outputs["certificate_status"]["value"] == "valid"
    assert outputs["vault_version"]["value"] == "1"
    assert "PCI-DSS" in outputs["standards_met"]["value"]
    assert tf("plan", "-detailed-exitcode", var).returncode == 0
    tf("apply", "-auto-approve", var, "-var=keeper=2026-12-01").ok()
    assert vault_version(openbao, path) == 2
    tf("destroy", "-auto-approve", var, "-var=keeper=2026-12-01").ok()
    needles = secret_needles(list(vault_versions(openbao, path)))
    assert find_in_files(terraform_files(tf), needles) == []


def test_uncertified_value_is_never_opened_and_a_deleted_one_is_recreated(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    kv = openbao.hvac_client().secrets.kv.v2
    kv.create_or_update_secret(
        path=f"tf-plain/{uid}", mount_point="secret", secret={"password": "chosen-by-" + uid}
    )
    tf.write(
        PROVIDER
        + f"""
ephemeral "passgeni_credential" "plain" {{
  destination = "vault://secret/tf-plain/{uid}#password"
}}

resource "terraform_data" "consumer" {{
  provisioner "local-exec" {{
    command     = "true"
    environment = {{ P = ephemeral.passgeni_credential.plain.password }}
  }}
}}
"""
    )
    tf("init").ok()
    refused = tf("plan")
    assert refused.returncode == 1, refused.output
    assert "refusing to open a credential that is no_certificate" in " ".join(
        refused.stderr.split()
    )
    no_traceback(refused.output)
    assert "chosen-by-" not in refused.output

    path = f"tf-gone/{uid}"
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
    )
    tf("apply", "-auto-approve").ok()
    kv.delete_metadata_and_all_versions(path=path, mount_point="secret")
    gone = tf("plan", "-detailed-exitcode")
    assert gone.returncode == 2 and "will be created" in gone.stdout, gone.output
    assert vault_version(openbao, path) == 0
    tf("apply", "-auto-approve").ok()
    assert vault_version(openbao, path) == 1 and instance(tf, "db")["status"] == "valid"


def test_serve_provider_one_process_for_every_command(
    tf: Terraform,
    openbao: OpenBaoServer,
    uid: str,  # noqa: F811
) -> None:
    import os
    import shlex
    import signal
    import subprocess
    import sys

    served = subprocess.Popen(
        [str(Path(sys.executable).parent / "passgeni"), "terraform", "serve-provider"],
        env=tf.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert served.stdout is not None
        line = served.stdout.readline()
        assert line.startswith("export TF_REATTACH_PROVIDERS="), line
        value = shlex.split(line.split("=", 1)[1])[0]
        reattach = json.loads(value)["registry.terraform.io/passgeni/passgeni"]
        socket_path = Path(reattach["Addr"]["String"])
        assert (socket_path.stat().st_mode & 0o077) == 0  # only its user can connect
        assert (socket_path.parent.stat().st_mode & 0o077) == 0
        log = tf.workdir.parent / "reattached.log"
        tf.env.update(TF_REATTACH_PROVIDERS=value, TF_LOG="DEBUG", TF_LOG_PATH=str(log))
        path = f"tf-served/{uid}"
        tf.write(
            PROVIDER
            + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
        )
        tf("init").ok()
        tf("apply", "-auto-approve").ok()
        assert vault_version(openbao, path) == 1
        for _ in range(2):
            assert tf("plan", "-detailed-exitcode").returncode == 0
        assert "starting plugin" not in log.read_text()  # Terraform started no plugin
        assert served.poll() is None
        # Another provider block is refused by the running process, not silently ignored.
        tf.write(
            PROVIDER.replace('provider "passgeni" {}', 'provider "passgeni" {\n  timeout = 7\n}')
            + f"""
resource "passgeni_credential" "db" {{
  destination = "vault://secret/{path}#password"
  preset      = "soc2"
}}
"""
        )
        other = tf("plan")
        assert other.returncode == 1 and "restart it for the new one" in other.stderr, other.output
        no_traceback(other.output)
    finally:
        os.kill(served.pid, signal.SIGTERM)
        served.wait(timeout=30)
    errors = served.stderr.read() if served.stderr else ""
    assert served.returncode == 0, errors
    assert "already configured" not in errors and "Traceback" not in errors
    assert not socket_path.parent.exists()


def test_kubernetes_destination(
    tf: Terraform,
    kube_emulator: Any,
    tmp_path: Path,
    uid: str,  # noqa: F811
) -> None:
    import base64

    from tests.integration.k8s_operator_hooks.conftest import KUBECONFIG_TEMPLATE

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG_TEMPLATE.format(url=kube_emulator.url))
    tf.env.update(KUBECONFIG=str(kubeconfig))
    for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        tf.env.pop(name, None)
    namespace = "ns-" + uid
    tf.write(
        PROVIDER
        + f"""
resource "passgeni_credential" "app" {{
  destination = "k8s://{namespace}/app-creds#api_token"
  preset      = "iso-27001"
  keeper      = "1"
}}
"""
    )
    tf("init").ok()
    tf("apply", "-auto-approve").ok()
    app = instance(tf, "app")
    assert app["status"] == "valid" and app["cert_id"]
    assert tf("plan", "-detailed-exitcode").returncode == 0
    from kubernetes import client

    api = kube_emulator.api_client()
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret("app-creds", namespace)
    finally:
        api.close()
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    assert set(data) == {"api_token"}
    api = kube_emulator.api_client()
    try:
        proof = k8s_proof(client.CoreV1Api(api), namespace, "app-creds", "api_token")
    finally:
        api.close()
    assert proof["cert_id"] == app["cert_id"]
    needles = secret_needles([data, {"api_token.passgeni-seed": proof["seed"]}])
    assert find_in_files(terraform_files(tf), needles) == []
