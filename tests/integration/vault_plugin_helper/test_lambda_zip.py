"""The rotation handler run from the built Lambda zip, not from this checkout.

``python -m vault_plugin_helper.lambda_build`` builds the zip (its dependencies
vendored by pip as manylinux wheels, boto3 bundled so that nothing of this
machine's site-packages is needed); the zip is unpacked into a temporary
directory and a fresh interpreter (``-I -S``: no site-packages, no
PYTHONPATH, no user site) with only that directory on ``sys.path`` imports
the handler and calls the four steps against moto and the served authority,
as Secrets Manager would call the function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from passgeni_core import verify_certificate
from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.integration.vault_plugin_helper.rotation_support import Rotation, login
from tests.support import MotoServer
from tests.support.proofs import aws_proof_for
from vault_plugin_helper.lambda_build import ZIP_NAME, build

pytestmark = pytest.mark.timeout(300)

RUNNER = r"""
import json, sys
root = sys.argv[1]
sys.path.insert(0, root)
from vault_plugin_helper import rotation
import boto3, cryptography, jwt, passgeni_core, psycopg, requests, vault_plugin_helper
for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
    rotation.handler({"SecretId": sys.argv[2], "ClientRequestToken": sys.argv[3], "Step": step}, None)
modules = [boto3, cryptography, jwt, passgeni_core, psycopg, requests, vault_plugin_helper]
print(json.dumps({
    "files": [m.__file__ for m in modules],
    "path": sys.path,
    "site": [n for n in sys.modules if n == "site"],
}))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("lambda-build")
    zip_path, template = build(out, with_boto3=True)
    assert zip_path.name == ZIP_NAME and template.is_file()
    root = tmp_path_factory.mktemp("lambda-root")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert "vault_plugin_helper/rotation.py" in names
        assert not [n for n in names if "__pycache__" in n or n.startswith("bin/")]
        archive.extractall(root)
    yield root


def test_the_built_zip_rotates_a_secret_in_a_bare_interpreter(
    unpacked: Path,
    rotation: Rotation,
    moto_server: MotoServer,
    authority: Authority,
    tmp_path: Path,
) -> None:
    config = tmp_path / "absent.toml"
    config.write_text("")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PASSGENI_CONFIG": str(config),
        "PASSGENI_PRESET": "soc2",
        "PASSGENI_URL": authority.url,
        "PASSGENI_ISSUER": authority.embedded.issuer,
        "PASSGENI_API_KEY": authority.api_key,
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_REGION": moto_server.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(unpacked), rotation.arn, rotation.token],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Every module came from the unpacked zip; no site-packages was on the path.
    assert all(f.startswith(str(unpacked)) for f in seen["files"]), seen["files"]
    assert not [p for p in seen["path"] if "site-packages" in p], seen["path"]
    assert seen["site"] == []

    current = rotation.value("AWSCURRENT")
    assert current["password"] != rotation.first
    assert login(rotation.pg, rotation.role, current["password"])
    client = authority.client(issuer=authority.embedded.issuer)
    assert not [k for k in current if ".passgeni-" in k]  # the proof is beside the value
    record = client.get_certificate(aws_proof_for(rotation.sm, rotation.arn)["cert_id"])
    cert = verify_certificate(record.token, client.jwks(), issuer=client.issuer)
    assert cert.claims.target is not None and cert.claims.target.version == rotation.token
    assert rotation.tags()["passgeni-cert-id"] == record.cert_id
    assert current["password"] not in done.stdout + done.stderr
