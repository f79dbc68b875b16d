"""Shared by the real-Terraform provider tests: the mirror, the working directory, what to look for.

The ``tf`` fixture is a :class:`tests.support.terraform.Terraform` working directory whose
commands run with the environment a user would give Terraform (the test authority, OpenBao,
moto) and a CLI config naming the filesystem mirror ``passgeni terraform install-provider``
laid out. The helpers read what the stores hold and where a secret could have leaked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from passgeni_core import AuthorityClient
from tests.support import MotoServer, OpenBaoServer
from tests.support.authority import Authority
from tests.support.terraform import Terraform, encodings, install_mirror

__all__ = [
    "PROVIDER",
    "audit_total",
    "aws_values",
    "cli_config",
    "instance",
    "no_traceback",
    "secret_needles",
    "state",
    "terraform_files",
    "tf",
    "vault_version",
    "vault_versions",
]

PROVIDER = """
terraform {
  required_providers {
    passgeni = { source = "passgeni/passgeni" }
  }
}

provider "passgeni" {}
"""


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_mirror(tmp_path_factory.mktemp("tf-mirror"))


@pytest.fixture
def tf(
    tmp_path: Path,
    cli_config: Path,
    authority: Authority,
    openbao: OpenBaoServer,
    moto_server: MotoServer,
) -> Terraform:
    config = tmp_path / "passgeni.toml"
    config.write_text("")
    return Terraform(
        tmp_path / "work",
        cli_config,
        {
            "HOME": str(tmp_path),
            "PASSGENI_CONFIG": str(config),
            "PASSGENI_URL": authority.url,
            "PASSGENI_API_KEY": authority.api_key,
            "PASSGENI_ISSUER": authority.embedded.issuer,
            "VAULT_ADDR": openbao.url,
            "VAULT_TOKEN": openbao.token,
            "AWS_ENDPOINT_URL": moto_server.url,
            "AWS_REGION": moto_server.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )


def vault_versions(openbao: OpenBaoServer, path: str) -> Iterator[dict[str, Any]]:
    """Every version's data at ``secret/path`` (current last), then every version of its
    proof record (``secret/passgeni-proof/path``: the seeds)."""
    kv = openbao.hvac_client().secrets.kv.v2
    if not path.startswith("passgeni-proof/") and vault_version(openbao, f"passgeni-proof/{path}"):
        yield from vault_versions(openbao, f"passgeni-proof/{path}")
    current = int(
        kv.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"]
    )
    for version in range(1, current + 1):
        yield kv.read_secret_version(
            path=path, mount_point="secret", version=version, raise_on_deleted_version=True
        )["data"]["data"]


def vault_version(openbao: OpenBaoServer, path: str) -> int:
    kv = openbao.hvac_client().secrets.kv.v2
    try:
        meta = kv.read_secret_metadata(path=path, mount_point="secret")
    except Exception:
        return 0
    return int(meta["data"]["current_version"])


def aws_values(moto: MotoServer, name: str) -> list[dict[str, Any]]:
    client = moto.boto3_client("secretsmanager")
    out = []
    for version in client.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)[
        "Versions"
    ]:
        value = client.get_secret_value(SecretId=name, VersionId=version["VersionId"])
        out.append(json.loads(value["SecretString"]))
    if not name.startswith("passgeni-proof/"):
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            out = aws_values(moto, f"passgeni-proof/{name}") + out
    return out


def secret_needles(datas: list[dict[str, Any]]) -> set[bytes]:
    """The password and the seed of every stored version, in every encoding."""
    from passgeni_core.crypto import decode_seed

    needles: set[bytes] = set()
    for data in datas:
        for name, value in data.items():
            if not isinstance(value, str) or name.endswith(("cert-id", "cert-url")):
                continue
            if name.endswith(".passgeni-proof"):  # a proof record's entries: their seeds
                for entry in json.loads(value):
                    needles |= encodings(entry["seed"]) | encodings(decode_seed(entry["seed"]))
                continue
            needles |= encodings(value)
            if name.endswith("seed"):
                needles |= encodings(decode_seed(value))
    return needles


def terraform_files(tf: Terraform) -> list[Path]:
    return [
        p for p in tf.workdir.rglob("*") if p.is_file() and ".terraform/providers" not in str(p)
    ]


def state(tf: Terraform) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tf.workdir / "terraform.tfstate").read_text())
    return data


def instance(tf: Terraform, name: str) -> dict[str, Any]:
    for resource in state(tf)["resources"]:
        if resource["name"] == name:
            attributes: dict[str, Any] = resource["instances"][0]["attributes"]
            return attributes
    raise AssertionError(f"{name} not in the state")


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def audit_total(authority: Authority) -> int:
    with authority.client(issuer=authority.embedded.issuer) as client:
        client_: AuthorityClient = client
        return client_.audit(page_size=1).total
