"""The CloudFormation template of the rotation Lambda (see :mod:`.lambda_build`).

One function, its role and a least-privilege policy, the Lambda permission for
Secrets Manager and the rotation schedule, for one secret:

* ``secretsmanager:DescribeSecret``, ``GetSecretValue``, ``PutSecretValue``,
  ``UpdateSecretVersionStage`` on that secret only, and ``TagResource`` on it
  for the ``passgeni-*`` tag keys only (finishSecret tags the certificate
  references);
* the same and ``CreateSecret``, ``TagResource`` on ``passgeni-proof/*``, the proof
  records (generation seed, certificate references) beside the rotated secrets;
* ``GetSecretValue`` on the API key's secret and the master secret
  (alternating-users), when given;
* ``kms:Decrypt`` and ``kms:GenerateDataKey`` on the secret's KMS key, when it
  has a customer-managed one, and only through Secrets Manager
  (``kms:ViaService``);
* logs (``AWSLambdaBasicExecutionRole``), plus ENI management in a VPC
  (``AWSLambdaVPCAccessExecutionRole``) when subnets are given.

No secret goes in the template: the authority's API key is read at run time
from the secret named by ``ApiKeySecretArn``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HANDLER", "rotation_template"]

HANDLER = "vault_plugin_helper.rotation.handler"
_BASIC = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_VPC = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def _param(description: str, default: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": "String", "Description": description, **extra}
    if default is not None:
        out["Default"] = default
    return out


def _if(condition: str, value: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, value, {"Ref": "AWS::NoValue"}]}


def _not_empty(name: str) -> dict[str, Any]:
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}


def _statements() -> list[Any]:
    secret = {"Ref": "SecretArn"}
    return [
        {
            "Sid": "RotateThisSecret",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Resource": secret,
        },
        {
            # The proof record (seed, references) beside the secret: passgeni-proof/NAME.
            "Sid": "KeepProofRecords",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
                "secretsmanager:TagResource",
            ],
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                "${AWS::AccountId}:secret:passgeni-proof/*"
            },
        },
        {
            "Sid": "TagCertificateReferences",
            "Effect": "Allow",
            "Action": "secretsmanager:TagResource",
            "Resource": secret,
            "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["passgeni-*"]}},
        },
        _if(
            "HasApiKeySecret",
            {
                "Sid": "ReadAuthorityApiKey",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "ApiKeySecretArn"},
            },
        ),
        _if(
            "HasMasterSecret",
            {
                "Sid": "ReadMasterSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": {"Ref": "MasterSecretArn"},
            },
        ),
        _if(
            "HasKmsKey",
            {
                "Sid": "SecretKmsKeyThroughSecretsManager",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": {"Ref": "KmsKeyArn"},
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
                    }
                },
            },
        ),
    ]


def rotation_template(
    *, architecture: str = "x86_64", runtime: str = "python3.11"
) -> dict[str, Any]:
    """The template as a JSON-ready mapping (CloudFormation accepts JSON as is)."""
    environment = {
        "PASSGENI_PRESET": {"Ref": "Preset"},
        "PASSGENI_URL": {"Ref": "AuthorityUrl"},
        "PASSGENI_TARGET": {"Ref": "Target"},
        "PASSGENI_ROTATION_STRATEGY": {"Ref": "RotationStrategy"},
        "PASSGENI_API_KEY_SECRET_ARN": _if("HasApiKeySecret", {"Ref": "ApiKeySecretArn"}),
        "PASSGENI_MASTER_SECRET_ARN": _if("HasMasterSecret", {"Ref": "MasterSecretArn"}),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "PassGeni certified password rotation for one Secrets Manager secret",
        "Parameters": {
            "SecretArn": _param("ARN of the secret to rotate", AllowedPattern="arn:.+:secret:.+"),
            "CodeBucket": _param("S3 bucket holding the built passgeni-rotation.zip"),
            "CodeKey": _param("S3 key of passgeni-rotation.zip", "passgeni-rotation.zip"),
            "Preset": _param("compliance preset (soc2, pci-dss, ...)", "soc2"),
            "AuthorityUrl": _param("the PassGeni authority's URL", AllowedPattern="https?://.+"),
            "ApiKeySecretArn": _param("secret holding the authority API key (or empty)", ""),
            "Target": _param(
                "where the password is applied", "postgresql", AllowedValues=["postgresql", "none"]
            ),
            "RotationStrategy": _param(
                "single-user or alternating-users",
                "single-user",
                AllowedValues=["single-user", "alternating-users"],
            ),
            "MasterSecretArn": _param("alternating-users: the admin's secret (or empty)", ""),
            "KmsKeyArn": _param("the secret's customer-managed KMS key ARN (or empty)", ""),
            "RotationDays": {
                "Type": "Number",
                "Description": "days between rotations",
                "Default": 30,
                "MinValue": 1,
                "MaxValue": 1000,
            },
            "SubnetIds": {
                "Type": "CommaDelimitedList",
                "Description": "subnets reaching the database (empty: no VPC)",
                "Default": "",
            },
            "SecurityGroupIds": {
                "Type": "CommaDelimitedList",
                "Description": "security groups of the function in the VPC",
                "Default": "",
            },
        },
        "Conditions": {
            "HasApiKeySecret": _not_empty("ApiKeySecretArn"),
            "HasMasterSecret": _not_empty("MasterSecretArn"),
            "HasKmsKey": _not_empty("KmsKeyArn"),
            "HasVpc": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SubnetIds"}]}, ""]}]},
        },
        "Resources": {
            "RotationRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "ManagedPolicyArns": [
                        {"Fn::Sub": _BASIC},
                        _if("HasVpc", {"Fn::Sub": _VPC}),
                    ],
                    "Policies": [
                        {
                            "PolicyName": "passgeni-rotation",
                            "PolicyDocument": {"Version": "2012-10-17", "Statement": _statements()},
                        }
                    ],
                },
            },
            "RotationFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Description": "PassGeni certified rotation (createSecret..finishSecret)",
                    "Runtime": runtime,
                    "Architectures": [architecture],
                    "Handler": HANDLER,
                    "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                    "Role": {"Fn::GetAtt": ["RotationRole", "Arn"]},
                    "Timeout": 120,
                    "MemorySize": 256,
                    "Environment": {"Variables": environment},
                    "VpcConfig": _if(
                        "HasVpc",
                        {
                            "SubnetIds": {"Ref": "SubnetIds"},
                            "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
                        },
                    ),
                },
            },
            "SecretsManagerInvoke": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": {"Ref": "RotationFunction"},
                    "Principal": "secretsmanager.amazonaws.com",
                    "SourceArn": {"Ref": "SecretArn"},
                },
            },
            "RotationSchedule": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "DependsOn": "SecretsManagerInvoke",
                "Properties": {
                    "SecretId": {"Ref": "SecretArn"},
                    "RotationLambdaARN": {"Fn::GetAtt": ["RotationFunction", "Arn"]},
                    "RotationRules": {
                        "ScheduleExpression": {"Fn::Sub": "rate(${RotationDays} days)"}
                    },
                },
            },
        },
        "Outputs": {
            "FunctionArn": {"Value": {"Fn::GetAtt": ["RotationFunction", "Arn"]}},
            "RoleArn": {"Value": {"Fn::GetAtt": ["RotationRole", "Arn"]}},
        },
    }
