"""Shared by the rotation tests: a PostgreSQL cluster that checks passwords, a moto
Lambda function so ``rotate_secret`` stages ``AWSPENDING``, and :class:`Rotation`."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.integration.vault_plugin_helper.fixtures import Authority
from tests.support import MotoServer, PostgresCluster
from vault_plugin_helper.rotation import RotationConfig


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    """A cluster of our own: SCRAM password checks for every role except ``postgres``."""
    with PostgresCluster() as cluster:
        hba = cluster.datadir / "pg_hba.conf"
        hba.write_text(
            "local all postgres trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield cluster


@pytest.fixture(scope="module")
def lambda_arn(moto_server: MotoServer) -> str:
    iam = moto_server.boto3_client("iam")
    role = iam.create_role(RoleName=f"rot-{secrets.token_hex(3)}", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    fn = moto_server.boto3_client("lambda").create_function(
        FunctionName=f"passgeni-rotation-{secrets.token_hex(3)}",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="h.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return str(fn["FunctionArn"])


def login(pg: PostgresCluster, role: str, password: str) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=pg.port, dbname="postgres", user=role, password=password
        ) as conn:
            return conn.execute("SELECT current_user").fetchone() == (role,)
    except psycopg.OperationalError:
        return False


def superuser(pg: PostgresCluster) -> psycopg.Connection[Any]:
    return psycopg.connect(pg.dsn(), autocommit=True)


class Rotation:
    """One secret staged for rotation: its ARN, token and the helpers to drive it."""

    def __init__(
        self,
        moto: MotoServer,
        pg: PostgresCluster,
        lambda_arn: str,
        name: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.sm = moto.boto3_client("secretsmanager")
        self.pg = pg
        self.role = f"app_{name}"
        self.first = "Initial-Pw-" + secrets.token_hex(8)
        with superuser(pg) as conn:
            conn.execute(f"CREATE ROLE \"{self.role}\" LOGIN PASSWORD '{self.first}'")
        created = self.sm.create_secret(
            Name=f"db/{name}",
            SecretString=json.dumps(
                {
                    "engine": "postgres",
                    "host": "127.0.0.1",
                    "port": pg.port,
                    "username": self.role,
                    "password": self.first,
                    "dbname": "postgres",
                    **(extra or {}),
                }
            ),
        )
        self.arn = created["ARN"]
        self.token = secrets.token_hex(16)
        self.sm.rotate_secret(
            SecretId=self.arn,
            ClientRequestToken=self.token,
            RotationLambdaARN=lambda_arn,
            RotationRules={"AutomaticallyAfterDays": 30},
        )
        assert self.stages()[self.token] == ["AWSPENDING"]

    def event(self, step: str) -> dict[str, str]:
        return {"SecretId": self.arn, "ClientRequestToken": self.token, "Step": step}

    def stages(self) -> dict[str, list[str]]:
        return dict(self.sm.describe_secret(SecretId=self.arn)["VersionIdsToStages"])

    def value(self, stage: str, version: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"SecretId": self.arn, "VersionStage": stage}
        if version:
            kwargs["VersionId"] = version
        data: dict[str, Any] = json.loads(self.sm.get_secret_value(**kwargs)["SecretString"])
        return data

    def tags(self) -> dict[str, str]:
        described = self.sm.describe_secret(SecretId=self.arn)
        return {t["Key"]: t["Value"] for t in described.get("Tags", [])}


@pytest.fixture
def rotation(moto_server: MotoServer, pg: PostgresCluster, lambda_arn: str, uid: str) -> Rotation:
    return Rotation(moto_server, pg, lambda_arn, uid)


@pytest.fixture
def config(authority: Authority) -> RotationConfig:
    return RotationConfig(
        preset="soc2",
        url=authority.url,
        api_key=authority.api_key,
        issuer=authority.embedded.issuer,
    )
