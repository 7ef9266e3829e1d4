"""The synthesized stack's resources created in moto from the template's own definitions,
and the payout state machine's definition run as Step Functions would run it."""

import json
from collections.abc import Callable
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
    # The functions exist only as what the state machine names: their aliases' ARNs.
    for logical_id, function in resources(template, "AWS::Lambda::Function").items():
        resolve.refs[logical_id] = function["FunctionName"]
    for logical_id, alias in resources(template, "AWS::Lambda::Alias").items():
        function_name = resolve(alias["FunctionName"])
        resolve.refs[logical_id] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}:{alias['Name']}"
        )
    states = boto3.client("stepfunctions", region_name=REGION)
    for logical_id, machine in resources(template, "AWS::StepFunctions::StateMachine").items():
        name = machine["StateMachineName"]
        resolve.refs[logical_id] = states.create_state_machine(
            name=name,
            definition=resolve(machine["DefinitionString"]),
            # Its role is the template's own (GetAtt); moto only needs one named.
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-states",
        )["stateMachineArn"]
    return {"s3": s3, "sns": sns, "stepfunctions": states}


def function_environment(
    template: dict[str, Any], resolve: Resolver, short: str = "api"
) -> dict[str, str]:
    """The environment the template gives the function `referrals-<stage>-<short>`."""
    functions = resources(template, "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["FunctionName"].endswith(f"-{short}")]
    return {name: resolve(value) for name, value in function["Environment"]["Variables"].items()}


Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


def run_execution(definition: str, state: dict[str, Any], invoke: Invoke) -> list[str]:
    """Run an execution of `definition` from its input `state` until it succeeds, and
    return the states it went through. moto records executions but runs none, so this
    runs the states the payout machine uses (infra/payouts.py), as Step Functions does:
    a Lambda task (`invoke(resource, state)`, its result the next state: the CDK's
    payload_response_only), a Choice on booleans, a Pass with parameters by path,
    Succeed. Anything else fails the test: the machine grew a state to run here.
    """
    machine = json.loads(definition)
    name, path = machine["StartAt"], []
    while True:
        path.append(name)
        step = machine["States"][name]
        if step["Type"] == "Succeed":
            return path
        if step["Type"] == "Task":
            state = invoke(step["Resource"], state)
            name = step["Next"]
        elif step["Type"] == "Choice":
            assert all(set(c) == {"Variable", "BooleanEquals", "Next"} for c in step["Choices"])
            chosen = [
                c["Next"]
                for c in step["Choices"]
                if state.get(c["Variable"].removeprefix("$.")) is c["BooleanEquals"]
            ]
            name = chosen[0] if chosen else step["Default"]
        elif step["Type"] == "Pass":
            state = {
                key.removesuffix(".$"): state[value.removeprefix("$.")]
                if key.endswith(".$")
                else value
                for key, value in step["Parameters"].items()
            }
            name = step["Next"]
        else:
            raise AssertionError(f"a {step['Type']} state: run it here first")
