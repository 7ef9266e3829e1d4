"""The synthesized stack's resources created in moto from the template's own definitions."""

from typing import Any

import boto3

from tests.aws.conftest import ACCOUNT, REGION

TABLE_PROPERTIES = ("TableName", "KeySchema", "AttributeDefinitions", "BillingMode")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


class Resolver:
    """Resolves the intrinsic functions the template's names and variables use."""

    def __init__(self) -> None:
        self.refs: dict[str, str] = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION}

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return self.refs[value["Ref"]]
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self(part) for part in parts)
        raise ValueError(f"cannot resolve {value}")


def create_from_template(template: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical_id, table in resources(template, "AWS::DynamoDB::Table").items():
        arguments = {name: table[name] for name in TABLE_PROPERTIES}
        if "GlobalSecondaryIndexes" in table:
            arguments["GlobalSecondaryIndexes"] = table["GlobalSecondaryIndexes"]
        if "StreamSpecification" in table:
            view = table["StreamSpecification"]["StreamViewType"]
            arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        dynamodb.create_table(**arguments)
        resolve.refs[logical_id] = table["TableName"]
    s3 = boto3.client("s3", region_name=REGION)
    for logical_id, bucket in resources(template, "AWS::S3::Bucket").items():
        name = resolve(bucket["BucketName"])
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        resolve.refs[logical_id] = name
    sns = boto3.client("sns", region_name=REGION)
    for logical_id, topic in resources(template, "AWS::SNS::Topic").items():
        resolve.refs[logical_id] = sns.create_topic(Name=topic["TopicName"])["TopicArn"]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for logical_id, secret in resources(template, "AWS::SecretsManager::Secret").items():
        value = secrets.get_random_password(**secret["GenerateSecretString"])["RandomPassword"]
        created = secrets.create_secret(Name=secret["Name"], SecretString=value)
        resolve.refs[logical_id] = created["ARN"]
    return {"s3": s3, "sns": sns}


def function_environment(
    template: dict[str, Any], resolve: Resolver, short: str = "api"
) -> dict[str, str]:
    """The environment the template gives the function `referrals-<stage>-<short>`."""
    functions = resources(template, "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["FunctionName"].endswith(f"-{short}")]
    return {name: resolve(value) for name, value in function["Environment"]["Variables"].items()}
