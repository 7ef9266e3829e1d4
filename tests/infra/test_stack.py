"""stack.py: what the stack wires between the constructs, as infra/README.md designs it.

The signing secret, the notify function's outbox stream and sweep, each role's
grants and least privilege, the physical names across stages, and the outputs.
"""

import json
import re

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import (
    PREFIX,
    Json,
    alias_ref,
    arn,
    as_list,
    find,
    find_bucket,
    ref,
    render,
    resources,
    statements,
)

# --- the signing secret --------------------------------------------------------------


def test_signing_secret_is_generated_encrypted_with_the_key_and_retained(
    template: Template, template_json: Json
) -> None:
    template.resource_count_is("AWS::SecretsManager::Secret", 1)
    template.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "Properties": {
                "Name": f"{PREFIX}-signing-secret",
                "KmsKeyId": arn(template_json, "AWS::KMS::Key"),
                "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
                "SecretString": Match.absent(),
            },
            "DeletionPolicy": "Retain",
        },
    )
    # Rotation would invalidate every live link and session: none is scheduled.
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)


def test_only_the_api_function_may_read_the_signing_secret(template_json: Json) -> None:
    secret = render(ref(template_json, "AWS::SecretsManager::Secret"), template_json)
    assert _role_actions(template_json, "api")[secret] == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    # The API role's policy is the only one that names a Secrets Manager action.
    policies = {
        logical_id
        for logical_id, _, statement in statements(template_json)
        if any(str(a).startswith("secretsmanager:") for a in as_list(statement["Action"]))
    }
    assert len(policies) == 1


# --- the outbox stream ---------------------------------------------------------------


def test_notify_reads_new_outbox_events_from_the_stream(
    template: Template, template_json: Json
) -> None:
    (table_id, _) = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-outbox")
    notify = alias_ref(template_json, "notify")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            # `function:alias`: the stream invokes the alias's published version.
            "FunctionName": {
                "Fn::Join": [
                    "",
                    [{"Fn::Select": [6, {"Fn::Split": [":", notify]}]}, ":live"],
                ]
            },
            "EventSourceArn": {"Fn::GetAtt": [table_id, "StreamArn"]},
            "FilterCriteria": {
                "Filters": [
                    {"Pattern": json.dumps({"eventName": ["INSERT"]}, separators=(",", ":"))}
                ]
            },
            "BatchSize": 100,
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": 5,
            "StartingPosition": "TRIM_HORIZON",
            "DestinationConfig": {
                "OnFailure": {"Destination": arn(template_json, "AWS::SQS::Queue")}
            },
        },
    )


def test_notify_also_sweeps_due_retries_every_minute(
    template: Template, template_json: Json
) -> None:
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": f"{PREFIX}-notify-sweep",
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [Match.object_like({"Arn": alias_ref(template_json, "notify")})],
        },
    )


# --- least privilege -----------------------------------------------------------------

# Allow statements may have Resource "*" only for these actions, which support
# no resource-level permission in IAM.
STAR_RESOURCE_ACTIONS = {
    # X-Ray (Lambda active tracing, Step Functions tracing): no resource types.
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    # The stream event source mapping lists the table's streams.
    "dynamodb:ListStreams": "ListStreams has no resource-level permissions",
    # Step Functions logging to CloudWatch Logs goes through log deliveries.
    "logs:CreateLogDelivery": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:GetLogDelivery": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:UpdateLogDelivery": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:DeleteLogDelivery": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:ListLogDeliveries": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:PutResourcePolicy": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:DescribeResourcePolicies": "CloudWatch Logs vended log delivery requires Resource *",
    "logs:DescribeLogGroups": "CloudWatch Logs vended log delivery requires Resource *",
}


def test_no_policy_allows_scan(template_json: Json) -> None:
    for logical_id, _, statement in statements(template_json):
        actions = as_list(statement.get("Action", []))
        assert not any(a.lower() in ("dynamodb:scan", "dynamodb:*") for a in actions), logical_id


def test_no_policy_allows_every_action(template_json: Json) -> None:
    for logical_id, resource_type, statement in statements(template_json):
        actions = as_list(statement.get("Action", []))
        assert "*" not in actions, logical_id
        service_wide = [a for a in actions if a.endswith(":*")]
        if statement["Effect"] == "Deny":
            continue  # the TLS-only policies deny s3:*, sns:Publish..., sqs:*: fine
        # The key's administration by the account (CDK's default key policy, without
        # which the key could not be managed at all) is the only service-wide grant.
        assert service_wide in ([], ["kms:*"]), (logical_id, service_wide)
        if service_wide:
            assert resource_type == "AWS::KMS::Key"
            principal = render(statement["Principal"]["AWS"], template_json)
            assert principal == "arn:aws:iam::<AWS::AccountId>:root", principal


def test_resource_star_only_where_aws_requires_it(template_json: Json) -> None:
    for logical_id, resource_type, statement in statements(template_json):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        if resource_type == "AWS::KMS::Key":
            continue  # in a key policy, "*" is the key itself
        actions = set(as_list(statement["Action"]))
        assert actions <= set(STAR_RESOURCE_ACTIONS), (
            logical_id,
            actions - set(STAR_RESOURCE_ACTIONS),
        )


def test_roles_carry_no_managed_policy_but_api_gateway_logging(template_json: Json) -> None:
    managed = {
        logical_id: render(arn_, template_json)
        for logical_id, role in resources(template_json, "AWS::IAM::Role").items()
        for arn_ in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert list(managed.values()) == [
        "arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ]


def _role_actions(template_json: Json, short: str) -> dict[str, set[str]]:
    """Resource (rendered) -> actions the function's role may take on it."""
    _, function = find(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    granted: dict[str, set[str]] = {}
    for policy in resources(template_json, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for resource in as_list(statement["Resource"]):
                granted.setdefault(render(resource, template_json), set()).update(
                    as_list(statement["Action"])
                )
    return granted


def _table_arn(template_json: Json, table: str) -> str:
    logical_id, _ = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-{table}")
    return f"<{logical_id}.Arn>"


def test_api_and_payout_grants(template_json: Json) -> None:
    main = _table_arn(template_json, "main")
    outbox = _table_arn(template_json, "outbox")
    reports, _ = find_bucket(template_json, "reports")
    store = {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    for short in ("api", "payout"):
        granted = _role_actions(template_json, short)
        assert granted[main] == store
        assert granted[f"{main}/index/*"] == store
        assert granted[f"<{reports}.Arn>/*"] == {
            "s3:GetObject",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",  # a staged copy, once its report is published
        }
        assert granted[f"<{reports}.Arn>"] == {"s3:ListBucket"}
        assert not any(a.startswith("sns:") for actions in granted.values() for a in actions)
    assert _role_actions(template_json, "payout")[outbox] == {"dynamodb:PutItem"}
    assert _role_actions(template_json, "api")[outbox] == {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    }


def test_only_the_api_may_start_the_payout_state_machine_and_only_that(
    template_json: Json,
) -> None:
    machine = render(ref(template_json, "AWS::StepFunctions::StateMachine"), template_json)
    granted = _role_actions(template_json, "api")
    assert granted[machine] == {"states:StartExecution"}
    # No other Step Functions action, on anything, for any function.
    for short in ("api", "payout", "notify"):
        states = {
            (resource, action)
            for resource, actions in _role_actions(template_json, short).items()
            for action in actions
            if action.startswith("states:")
        }
        assert states == ({(machine, "states:StartExecution")} if short == "api" else set())


def test_notify_grants(template_json: Json) -> None:
    granted = _role_actions(template_json, "notify")
    outbox_id, _ = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-outbox")
    topic, _ = find(template_json, "AWS::SNS::Topic")
    assert granted[f"<{outbox_id}.Arn>"] == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",  # the sweep prunes delivered events
    }
    assert granted[f"<{outbox_id}.StreamArn>"] == {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    }
    assert granted[f"<{topic}>"] == {"sns:Publish"}
    assert _table_arn(template_json, "main") not in granted


# --- names ---------------------------------------------------------------------------

_NAME_PROPERTIES = (
    "TableName",
    "BucketName",
    "TopicName",
    "QueueName",
    "FunctionName",
    "LogGroupName",
    "StateMachineName",
    "DashboardName",
    "AlarmName",
    "AliasName",
)


_NAMED_BY_NAME = (
    "AWS::Events::Rule",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::RequestValidator",
)


def _names(template_json: Json) -> dict[str, str]:
    """Every physical name the template sets, rendered."""
    names = {}
    for logical_id, resource in template_json["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Permission":
            continue  # its FunctionName is the function's ARN
        props = resource.get("Properties", {})
        keys = [*_NAME_PROPERTIES, *(["Name"] if resource["Type"] in _NAMED_BY_NAME else [])]
        for key in keys:
            if key in props:
                names[f"{logical_id}.{key}"] = render(props[key], template_json)
    return names


def test_every_name_carries_the_stage_and_no_timestamp(other_synthesis: dict[str, Json]) -> None:
    names = _names(other_synthesis["alpha"])
    assert len(names) >= 25
    for where, name in names.items():
        assert "alpha" in name, where
        assert not re.search(r"\d{8,}|\d{4}-\d{2}-\d{2}", name.replace("<AWS::AccountId>", "")), (
            where
        )


def _canonical(template_json: Json, stage: str) -> str:
    text = json.dumps(template_json, sort_keys=True)
    # The deployment's logical id hashes the API definition, names included, so
    # that a changed API redeploys.
    text = re.sub(r'"ApiDeployment[0-9A-F]{8}[0-9a-f]{32}"', '"ApiDeployment"', text)
    # A version's logical id hashes its function's configuration, names included, so
    # that a changed function publishes a new version.
    text = re.sub(r"(FunctionCurrentVersion[0-9A-F]{8})[0-9a-f]{32}", r"\1", text)
    # CDK derives a few logical ids from construct ids that hold the stage (the
    # API stage and the permissions that name it, the stack itself for the rule
    # permissions), with hashes of those ids: drop the hashes from such ids (and
    # from the construct paths that name them).
    return re.sub(
        rf'"[^"]*{stage}[^"]*"',
        lambda match: re.sub(r"[0-9A-F]{8}", "", match.group()),
        text,
    )


def test_stages_differ_only_by_their_names(
    template_json: Json, other_synthesis: dict[str, Json]
) -> None:
    alpha = _canonical(other_synthesis["alpha"], "alpha")
    assert "prod" not in alpha
    assert _canonical(template_json, "prod").replace("prod", "alpha") == alpha


def test_the_same_stage_synthesizes_the_same_template(
    template_json: Json, other_synthesis: dict[str, Json]
) -> None:
    assert other_synthesis["prod"] == template_json


# --- outputs -------------------------------------------------------------------------


def test_outputs(template_json: Json) -> None:
    outputs = template_json["Outputs"]
    assert {
        "ApiUrl",
        "ReportBucketName",
        "TopicArn",
        "MainTableName",
        "OutboxTableName",
        "PayoutStateMachineArn",
    } <= set(outputs)
    assert outputs["TopicArn"]["Value"] == ref(template_json, "AWS::SNS::Topic")
    assert outputs["PayoutStateMachineArn"]["Value"] == ref(
        template_json, "AWS::StepFunctions::StateMachine"
    )
    api_url = render(outputs["ApiUrl"]["Value"], template_json)
    assert api_url.startswith("https://") and api_url.endswith("/prod/")
