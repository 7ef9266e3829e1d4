"""The synthesized template, property by property, against the design in infra/README.md."""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from pydantic import BaseModel

from infra.schemas import request_schema
from referrals.adapters.dynamodb.tables import TTL_ATTRIBUTE, main_table, outbox_table
from referrals.api.schemas import LegacySignupRequest, SignupRequest
from referrals.domain.reports import STAGED_PREFIX

PREFIX = "referrals-prod"
FUNCTIONS = {
    # short name: (handler, reserved concurrency)
    "api": ("referrals.aws.api.handler", 50),
    "payout": ("referrals.aws.payout.handler", 1),
    "notify": ("referrals.aws.notify.handler", 5),
}

Json = dict[str, Any]


# --- helpers -------------------------------------------------------------------------


def resources(template_json: Json, resource_type: str) -> dict[str, Json]:
    return {
        logical_id: resource
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == resource_type
    }


def find(template_json: Json, resource_type: str, **properties: Any) -> tuple[str, Json]:
    """The one resource of this type whose properties include these values."""
    matches = [
        (logical_id, resource)
        for logical_id, resource in resources(template_json, resource_type).items()
        if all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(matches) == 1, (resource_type, properties, [m[0] for m in matches])
    return matches[0]


def ref(template_json: Json, resource_type: str, **properties: Any) -> Json:
    return {"Ref": find(template_json, resource_type, **properties)[0]}


def arn(template_json: Json, resource_type: str, **properties: Any) -> Json:
    return {"Fn::GetAtt": [find(template_json, resource_type, **properties)[0], "Arn"]}


# Resources whose Ref is the name they are given.
_NAMES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    "AWS::ApiGateway::Stage": "StageName",
}


def render(value: Any, template_json: Json) -> str:
    """A string built with Fn::Join, with each Ref as the named resource's name."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part, template_json) for part in parts)
    if "Ref" in value:
        resource = template_json["Resources"].get(value["Ref"])
        if resource and resource["Type"] in _NAMES:
            return str(resource["Properties"][_NAMES[resource["Type"]]])
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"cannot render {value!r}")


def statements(template_json: Json) -> Iterator[tuple[str, str, Json]]:
    """(logical id, type, statement) of every policy document in the template."""
    for logical_id, resource in template_json["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, resource["Type"], statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- DynamoDB ------------------------------------------------------------------------


@pytest.mark.parametrize("definition", [main_table(PREFIX), outbox_table(PREFIX)])
def test_table_keys_and_indexes_are_the_store_design(template_json: Json, definition: Json) -> None:
    _, table = find(template_json, "AWS::DynamoDB::Table", TableName=definition["TableName"])
    props = table["Properties"]
    assert props["KeySchema"] == definition["KeySchema"]
    key = "AttributeName"
    assert sorted(props["AttributeDefinitions"], key=lambda a: a[key]) == sorted(
        definition["AttributeDefinitions"], key=lambda a: a[key]
    )
    by_name = "IndexName"
    assert sorted(props["GlobalSecondaryIndexes"], key=lambda i: i[by_name]) == sorted(
        definition["GlobalSecondaryIndexes"], key=lambda i: i[by_name]
    )
    assert all(
        i["Projection"] == {"ProjectionType": "ALL"} for i in props["GlobalSecondaryIndexes"]
    )
    assert props["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize("name", [f"{PREFIX}-main", f"{PREFIX}-outbox"])
def test_tables_are_recoverable_encrypted_and_retained(template_json: Json, name: str) -> None:
    _, table = find(template_json, "AWS::DynamoDB::Table", TableName=name)
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": arn(template_json, "AWS::KMS::Key"),
    }
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_main_table_deletes_expired_items(template_json: Json) -> None:
    # A client address's count of failed authentications, once its window has ended.
    _, main = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-main")
    assert main["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_only_the_outbox_streams_new_images(template_json: Json) -> None:
    _, outbox = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-outbox")
    _, main = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-main")
    assert outbox["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert "StreamSpecification" not in main["Properties"]


def test_the_key_rotates_and_is_retained(template: Template) -> None:
    template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
        },
    )
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/{PREFIX}"})


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


# --- S3 ------------------------------------------------------------------------------


def _bucket(template_json: Json, purpose: str) -> tuple[str, Json]:
    (match,) = [
        (logical_id, resource)
        for logical_id, resource in resources(template_json, "AWS::S3::Bucket").items()
        if render(resource["Properties"]["BucketName"], template_json).startswith(
            f"{PREFIX}-{purpose}-"
        )
    ]
    return match


@pytest.mark.parametrize("purpose", ["reports", "logs"])
def test_buckets_are_private_versioned_encrypted_and_retained(
    template_json: Json, purpose: str
) -> None:
    _, bucket = _bucket(template_json, purpose)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("purpose", ["reports", "logs"])
def test_buckets_refuse_requests_without_tls(template_json: Json, purpose: str) -> None:
    bucket_id, _ = _bucket(template_json, purpose)
    _, policy = find(template_json, "AWS::S3::BucketPolicy", Bucket={"Ref": bucket_id})
    assert {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Resource": [
            {"Fn::GetAtt": [bucket_id, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]},
        ],
    } in policy["Properties"]["PolicyDocument"]["Statement"]


def _lifecycle_rule(template_json: Json, rule_id: str) -> Json:
    _, bucket = _bucket(template_json, "reports")
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {r["Id"] for r in rules} == {"archive-reports", "expire-staged-reports"}
    (rule,) = [r for r in rules if r["Id"] == rule_id]
    found: Json = rule
    return found


def test_reports_move_to_glacier_after_90_days(template_json: Json) -> None:
    rule = _lifecycle_rule(template_json, "archive-reports")
    assert rule["Status"] == "Enabled" and "Prefix" not in rule
    # Instant Retrieval: GET /v1/payouts/{period}/report keeps working on old reports.
    assert rule["Transitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]
    assert rule["NoncurrentVersionTransitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]


def test_staged_reports_and_their_old_versions_expire(template_json: Json) -> None:
    # Deleting a staged copy once published leaves an old version on the versioned
    # bucket: kept a day. A copy an attempt left without completing: kept a week.
    rule = _lifecycle_rule(template_json, "expire-staged-reports")
    assert rule["Status"] == "Enabled" and rule["Prefix"] == STAGED_PREFIX
    assert rule["ExpirationInDays"] == 7
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_report_access_is_logged_to_the_log_bucket(template_json: Json) -> None:
    logs_id, _ = _bucket(template_json, "logs")
    _, reports = _bucket(template_json, "reports")
    assert reports["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id},
        "LogFilePrefix": "reports/",
    }


# --- SNS, SQS ------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_key(template: Template, template_json: Json) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": f"{PREFIX}-notifications",
            "DisplayName": "Referral Program Notifications",
            "KmsMasterKeyId": arn(template_json, "AWS::KMS::Key"),
        },
    )


def test_dead_letter_queue_is_encrypted_with_the_key(
    template: Template, template_json: Json
) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX}-dead-letters",
            "KmsMasterKeyId": arn(template_json, "AWS::KMS::Key"),
            "MessageRetentionPeriod": 14 * 24 * 3600,
        },
    )


# --- Lambda --------------------------------------------------------------------------


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_runtime_tracing_handler_and_concurrency(template_json: Json, short: str) -> None:
    handler, concurrency = FUNCTIONS[short]
    _, function = find(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    props = function["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["x86_64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Handler"] == handler
    assert props["ReservedConcurrentExecutions"] == concurrency
    assert props["KmsKeyArn"] == arn(template_json, "AWS::KMS::Key")


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_environment(template_json: Json, short: str) -> None:
    _, function = find(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    variables = function["Properties"]["Environment"]["Variables"]
    reports_bucket, _ = _bucket(template_json, "reports")
    # Only the API signs links and sessions: only it learns where the secret is.
    signing = {"REFERRALS_SECRET_KEY_ARN": ref(template_json, "AWS::SecretsManager::Secret")}
    assert variables == {
        **(signing if short == "api" else {}),
        "REFERRALS_DATABASE_URL": f"dynamodb://{PREFIX}",
        "REFERRALS_REPORTS_URL": {"Fn::Join": ["", ["s3://", {"Ref": reports_bucket}, "/"]]},
        "REFERRALS_NOTIFY_URL": ref(template_json, "AWS::SNS::Topic"),
        "REFERRALS_SCHEDULER": "off",
        "POWERTOOLS_SERVICE_NAME": "referrals",
        "POWERTOOLS_METRICS_NAMESPACE": "Referrals",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    }


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_logs_to_its_own_group_for_a_week(template_json: Json, short: str) -> None:
    _, function = find(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    group = function["Properties"]["LoggingConfig"]["LogGroup"]
    _, log_group = find(
        template_json, "AWS::Logs::LogGroup", LogGroupName=f"/aws/lambda/{PREFIX}-{short}"
    )
    assert group == ref(
        template_json, "AWS::Logs::LogGroup", LogGroupName=f"/aws/lambda/{PREFIX}-{short}"
    )
    assert log_group["Properties"]["RetentionInDays"] == 7


def test_every_log_group_keeps_a_week_encrypted(template_json: Json) -> None:
    groups = resources(template_json, "AWS::Logs::LogGroup")
    assert len(groups) == 6  # 3 functions, API access and execution, state machine
    key = arn(template_json, "AWS::KMS::Key")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 7
        assert group["Properties"]["KmsKeyId"] == key


def test_only_the_notify_function_has_a_dead_letter_queue(template_json: Json) -> None:
    queue = arn(template_json, "AWS::SQS::Queue")
    with_dlq = {
        r["Properties"]["FunctionName"]: r["Properties"]["DeadLetterConfig"]["TargetArn"]
        for r in resources(template_json, "AWS::Lambda::Function").values()
        if "DeadLetterConfig" in r["Properties"]
    }
    assert with_dlq == {f"{PREFIX}-notify": queue}


def test_functions_share_one_code_asset(template_json: Json) -> None:
    codes = {
        json.dumps(r["Properties"]["Code"], sort_keys=True)
        for r in resources(template_json, "AWS::Lambda::Function").values()
    }
    assert len(codes) == 1


# --- the outbox stream ---------------------------------------------------------------


def test_notify_reads_new_outbox_events_from_the_stream(
    template: Template, template_json: Json
) -> None:
    (table_id, _) = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-outbox")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": ref(
                template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-notify"
            ),
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
            "Targets": [
                Match.object_like(
                    {
                        "Arn": arn(
                            template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-notify"
                        )
                    }
                )
            ],
        },
    )


# --- payouts -------------------------------------------------------------------------


def test_monthly_rule_starts_the_payout_state_machine(
    template: Template, template_json: Json
) -> None:
    machine = ref(template_json, "AWS::StepFunctions::StateMachine")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": f"{PREFIX}-monthly-payout",
            "ScheduleExpression": "cron(0 0 1 * ? *)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": machine,
                        # The handler reads the month just ended from the scheduled time.
                        "InputTransformer": {
                            "InputPathsMap": {"time": "$.time"},
                            "InputTemplate": '{"time":<time>}',
                        },
                    }
                )
            ],
        },
    )


def test_hourly_rule_retries_a_failed_payout_run(template: Template, template_json: Json) -> None:
    machine = ref(template_json, "AWS::StepFunctions::StateMachine")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Name": f"{PREFIX}-payout-retry",
            "ScheduleExpression": "rate(1 hour)",
            "State": "ENABLED",
            # The handler runs the oldest run that stopped, if any, then the month behind it.
            "Targets": [Match.object_like({"Arn": machine, "Input": '{"retry":true}'})],
        },
    )


def _definition(template_json: Json) -> Json:
    _, machine = find(
        template_json, "AWS::StepFunctions::StateMachine", StateMachineName=f"{PREFIX}-payout"
    )
    definition: Json = json.loads(render(machine["Properties"]["DefinitionString"], template_json))
    return definition


def test_state_machine_loops_the_payout_function_until_done(template_json: Json) -> None:
    states = _definition(template_json)["States"]
    start = _definition(template_json)["StartAt"]
    task = states[start]
    assert task["Type"] == "Task"
    payout, _ = find(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-payout")
    assert task["Resource"] == f"<{payout}.Arn>"
    choice = states[task["Next"]]
    assert choice["Type"] == "Choice"
    assert choice["Choices"] == [
        {"Variable": "$.done", "BooleanEquals": True, "Next": choice["Choices"][0]["Next"]}
    ]
    assert states[choice["Choices"][0]["Next"]]["Type"] == "Succeed"
    carry_on = states[choice["Default"]]
    # Back to the task with only what the function takes: the period and the lease owner.
    assert carry_on == {
        "Type": "Pass",
        "Parameters": {"period.$": "$.period", "owner.$": "$.owner"},
        "Next": start,
    }


def test_state_machine_retries_lambda_errors(template_json: Json) -> None:
    definition = _definition(template_json)
    retried = {
        error
        for r in definition["States"][definition["StartAt"]]["Retry"]
        for error in r["ErrorEquals"]
    }
    assert {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "States.TaskFailed",
    } <= retried


def test_state_machine_is_traced_and_logged(template: Template, template_json: Json) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": f"{PREFIX}-payout",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like(
                {
                    "Level": "ALL",
                    "Destinations": [
                        {
                            "CloudWatchLogsLogGroup": {
                                "LogGroupArn": arn(
                                    template_json,
                                    "AWS::Logs::LogGroup",
                                    LogGroupName=f"/aws/vendedlogs/states/{PREFIX}-payout",
                                )
                            }
                        }
                    ],
                }
            ),
        },
    )


# --- API Gateway ---------------------------------------------------------------------


def _resource_paths(template_json: Json) -> dict[str, str]:
    """Logical id of every API resource -> its full path."""
    api_resources = resources(template_json, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path(logical_id: str) -> str:
        props = api_resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    for logical_id in api_resources:
        paths[logical_id] = path(logical_id)
    return paths


def _method(template_json: Json, path: str, http_method: str) -> Json:
    paths = _resource_paths(template_json)
    (method,) = [
        m["Properties"]
        for m in resources(template_json, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == http_method
        and "Ref" in m["Properties"]["ResourceId"]
        and paths[m["Properties"]["ResourceId"]["Ref"]] == path
    ]
    assert isinstance(method, dict)
    return method


def test_routes_reach_the_api_function(template_json: Json) -> None:
    assert set(_resource_paths(template_json).values()) == {
        "/{proxy+}",
        "/signup",
        "/v1",
        "/v1/{proxy+}",
        "/v1/signups",
    }
    function_arn = arn(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-api")
    for path, http_method in [
        ("/{proxy+}", "ANY"),
        ("/v1/{proxy+}", "ANY"),
        ("/signup", "POST"),
        ("/v1/signups", "POST"),
    ]:
        integration = _method(template_json, path, http_method)["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert function_arn in integration["Uri"]["Fn::Join"][1]


@pytest.mark.parametrize(
    ("path", "model"), [("/signup", LegacySignupRequest), ("/v1/signups", SignupRequest)]
)
def test_signup_bodies_are_validated_against_the_pydantic_schema(
    template_json: Json, path: str, model: type[BaseModel]
) -> None:
    method = _method(template_json, path, "POST")
    validator_id = method["RequestValidatorId"]["Ref"]
    validator = template_json["Resources"][validator_id]["Properties"]
    assert validator["ValidateRequestBody"] is True
    model_id = method["RequestModels"]["application/json"]["Ref"]
    schema = template_json["Resources"][model_id]["Properties"]["Schema"]
    assert schema == request_schema(model)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(model.model_json_schema()["required"])
    text = json.dumps(schema)
    assert "anyOf" not in text and "$defs" not in text and "$ref" not in text
    for field in schema["required"]:
        assert {"pattern", "maxLength", "minLength"} <= set(schema["properties"][field])
    email = {k: v for k, v in schema["properties"]["email"].items() if k != "description"}
    assert email == {
        "maxLength": 254,
        "minLength": 3,
        "title": "Email",
        "type": ["string", "null"],
    }


def test_a_refused_body_is_a_validation_problem(template_json: Json) -> None:
    _, response = find(
        template_json, "AWS::ApiGateway::GatewayResponse", ResponseType="BAD_REQUEST_BODY"
    )
    props = response["Properties"]
    assert props["StatusCode"] == "400"
    assert props["ResponseParameters"] == {
        "gatewayresponse.header.Content-Type": "'application/problem+json'"
    }
    body = props["ResponseTemplates"]["application/json"]
    problem = json.loads(body.replace("$context.error.messageString", '"Invalid request body"'))
    assert problem["code"] == "validation_error"
    assert problem["status"] == 400


def test_stage_throttles_traces_and_logs_access_as_json(template_json: Json) -> None:
    _, stage = find(template_json, "AWS::ApiGateway::Stage", StageName="prod")
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 100
    assert settings["ThrottlingBurstLimit"] == 200
    assert settings["MetricsEnabled"] is False  # the per-stage metrics are enough
    assert settings["DataTraceEnabled"] is False
    access_logs, _ = find(
        template_json, "AWS::Logs::LogGroup", LogGroupName=f"/aws/apigateway/{PREFIX}-api"
    )
    assert {"Ref": access_logs} in props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    sample = re.sub(r"\$context\.[A-Za-z.]+String", '"x"', props["AccessLogSetting"]["Format"])
    fields = json.loads(sample)
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status", "error"} <= set(fields)


def test_api_gateway_may_write_logs(template: Template) -> None:
    # Access and execution logs need the account's API Gateway CloudWatch role.
    template.resource_count_is("AWS::ApiGateway::Account", 1)
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {"Name": f"{PREFIX}-api", "EndpointConfiguration": {"Types": ["REGIONAL"]}},
    )


# --- dashboard and alarms ------------------------------------------------------------


def _dashboard_metrics(template_json: Json) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    _, dashboard = find(template_json, "AWS::CloudWatch::Dashboard", DashboardName=PREFIX)
    body = json.loads(render(dashboard["Properties"]["DashboardBody"], template_json))
    found = set()
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            names = [m for m in metric if isinstance(m, str)]
            if len(names) >= 2:
                namespace, metric_name, *dimensions = names
                pairs = frozenset(zip(dimensions[::2], dimensions[1::2], strict=True))
                found.add((namespace, metric_name, pairs))
    return found


def test_dashboard_shows_each_function(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for short in FUNCTIONS:
        for name in ("Invocations", "Errors", "Duration", "Throttles"):
            dims = frozenset({("FunctionName", f"{PREFIX}-{short}")})
            assert ("AWS/Lambda", name, dims) in metrics, (short, name)


def test_dashboard_shows_each_table(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for table in (f"{PREFIX}-main", f"{PREFIX}-outbox"):
        for name in (
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        ):
            assert ("AWS/DynamoDB", name, frozenset({("TableName", table)})) in metrics


def test_dashboard_shows_the_api_stage(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    dims = frozenset({("ApiName", f"{PREFIX}-api"), ("Stage", "prod")})
    for name in ("4XXError", "5XXError", "Latency", "Count"):
        assert ("AWS/ApiGateway", name, dims) in metrics, name


def test_dashboard_shows_the_business_metrics(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for name in ("Signups", "RewardCents", "PayoutsCompleted", "PayoutCents"):
        assert ("Referrals", name, frozenset({("service", "referrals")})) in metrics


def test_every_alarm_notifies_the_topic(template_json: Json) -> None:
    alarms = resources(template_json, "AWS::CloudWatch::Alarm")
    topic = ref(template_json, "AWS::SNS::Topic")
    assert {a["Properties"]["AlarmName"] for a in alarms.values()} == {
        f"{PREFIX}-api-errors",
        f"{PREFIX}-payout-errors",
        f"{PREFIX}-notify-errors",
        f"{PREFIX}-api-5xx",
        f"{PREFIX}-payout-failed",
        f"{PREFIX}-schedule-failed",
        f"{PREFIX}-dead-letters",
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [topic]


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_errors_alarm(template: Template, template_json: Json, short: str) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{PREFIX}-{short}-errors",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [
                {
                    "Name": "FunctionName",
                    "Value": ref(
                        template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}"
                    ),
                }
            ],
        },
    )


def test_api_5xx_and_failed_payout_alarms(template: Template, template_json: Json) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{PREFIX}-api-5xx",
            "MetricName": "5XXError",
            "Dimensions": Match.array_with([{"Name": "ApiName", "Value": f"{PREFIX}-api"}]),
        },
    )
    _, alarm = find(template_json, "AWS::CloudWatch::Alarm", AlarmName=f"{PREFIX}-payout-failed")
    names = {
        m.get("MetricStat", {}).get("Metric", {}).get("MetricName")
        for m in alarm["Properties"]["Metrics"]
    }
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} <= names


def test_cloudwatch_may_publish_alarms_to_the_encrypted_topic(template_json: Json) -> None:
    key_statements = [s for _, t, s in statements(template_json) if t == "AWS::KMS::Key"]
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
        for s in key_statements
    )
    topic_statements = [s for _, t, s in statements(template_json) if t == "AWS::SNS::TopicPolicy"]
    assert any(
        s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        for s in topic_statements
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
    reports, _ = _bucket(template_json, "reports")
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
