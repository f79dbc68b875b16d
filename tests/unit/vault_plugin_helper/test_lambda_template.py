"""The rotation Lambda's CloudFormation template: valid for cfn-lint, least privilege."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.process import venv_bin
from vault_plugin_helper._lambda_template import HANDLER, rotation_template
from vault_plugin_helper.lambda_build import main, requirements


def _walk(node: Any) -> list[Any]:
    out = [node]
    if isinstance(node, dict):
        for value in node.values():
            out += _walk(value)
    elif isinstance(node, list):
        for value in node:
            out += _walk(value)
    return out


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_cfn_lint_finds_nothing(tmp_path: Path, arch: str) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(rotation_template(architecture=arch)))
    cfn_lint = venv_bin("cfn-lint")
    assert cfn_lint is not None, "cfn-lint is in the test extras"
    done = subprocess.run([cfn_lint, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cfn_lint_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    template = rotation_template()
    template["Resources"]["RotationFunction"]["Properties"]["Timeoutt"] = 3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(template))
    cfn_lint = venv_bin("cfn-lint")
    assert cfn_lint is not None
    done = subprocess.run([cfn_lint, str(path)], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "Timeoutt" in done.stdout


def test_the_policy_is_least_privilege() -> None:
    template = rotation_template()
    resources = template["Resources"]
    role = resources["RotationRole"]["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    granted: dict[str, Any] = {}
    for statement in statements:
        body = statement.get("Fn::If", [None, statement])[1]
        actions = body["Action"] if isinstance(body["Action"], list) else [body["Action"]]
        for action in actions:
            granted.setdefault(action, []).append(body)
    assert set(granted) == {
        "secretsmanager:CreateSecret",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:TagResource",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    # Nothing on "*": every statement names its resource.
    assert "*" not in [n for n in _walk(statements) if isinstance(n, str)]
    # The proof records (seed, references) beside the rotated secrets: passgeni-proof/*.
    proofs = {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
        "${AWS::AccountId}:secret:passgeni-proof/*"
    }
    for action in ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"):
        assert [b["Resource"] for b in granted[action]] == [{"Ref": "SecretArn"}, proofs]
    assert [b["Resource"] for b in granted["secretsmanager:CreateSecret"]] == [proofs]
    proof_tag, tag = granted["secretsmanager:TagResource"]
    assert proof_tag["Resource"] == proofs
    assert tag["Condition"] == {"ForAllValues:StringLike": {"aws:TagKeys": ["passgeni-*"]}}
    (kms,) = granted["kms:Decrypt"]
    assert (
        kms["Resource"] == {"Ref": "KmsKeyArn"}
        and "kms:ViaService" in kms["Condition"]["StringEquals"]
    )
    kms_statement = next(s for s in statements if "Fn::If" in s and s["Fn::If"][0] == "HasKmsKey")
    assert kms_statement["Fn::If"][2] == {"Ref": "AWS::NoValue"}  # no key, no KMS grant

    invoke = resources["SecretsManagerInvoke"]["Properties"]
    assert invoke["Principal"] == "secretsmanager.amazonaws.com"
    assert invoke["SourceArn"] == {"Ref": "SecretArn"}
    function = resources["RotationFunction"]["Properties"]
    assert function["Handler"] == HANDLER
    # No secret in the template: the API key is read from a secret at run time.
    assert "PASSGENI_API_KEY" not in function["Environment"]["Variables"]
    schedule = resources["RotationSchedule"]
    assert schedule["DependsOn"] == "SecretsManagerInvoke"


def test_requirements_are_passgenis_pinned_and_bad_options_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reqs = requirements()
    names = {r.split("[")[0].split("=")[0].lower() for r in reqs}
    assert {"pyjwt", "cryptography", "requests", "msgspec", "psycopg"} <= names
    assert "boto3" not in names and "boto3" in {
        r.split("=")[0].lower() for r in requirements(with_boto3=True)
    }
    assert all("==" in r for r in reqs)
    assert main(["--out", str(tmp_path), "--python", "three"]) == 1
    assert (
        capsys.readouterr().err.strip() == "lambda_build: error: --python is a version such as 3.11"
    )
