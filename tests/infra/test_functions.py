"""functions.py: the three functions' runtime, handlers, environment, code asset and log groups."""

import json

import pytest

from tests.infra.conftest import (
    FUNCTIONS,
    PREFIX,
    Json,
    alias,
    alias_ref,
    arn,
    as_list,
    find,
    find_bucket,
    ref,
    resources,
    statements,
)


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
    reports_bucket, _ = find_bucket(template_json, "reports")
    # Only the API signs links and sessions: only it learns where the secret is.
    # And only the API starts payout runs (202; stack.py): only it learns the machine.
    only_api = {
        "REFERRALS_SECRET_KEY_ARN": ref(template_json, "AWS::SecretsManager::Secret"),
        "REFERRALS_PAYOUT_STATE_MACHINE_ARN": ref(
            template_json, "AWS::StepFunctions::StateMachine"
        ),
    }
    assert variables == {
        **(only_api if short == "api" else {}),
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


# --- SnapStart: published versions behind the alias every invoker calls ---------------


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_snapstarts_its_published_versions(template_json: Json, short: str) -> None:
    function_id, function = find(
        template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}"
    )
    assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    # SnapStart snapshots python3.12 and later.
    assert function["Properties"]["Runtime"] in {"python3.12", "python3.13"}
    ((version_id, version),) = [
        (logical_id, version)
        for logical_id, version in resources(template_json, "AWS::Lambda::Version").items()
        if version["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    # A replaced version goes, and with it the cost of its cached snapshot.
    assert version["DeletionPolicy"] == "Delete"
    _, live = alias(template_json, short)
    assert live["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    # No traffic split: every request goes to the one version that has a snapshot.
    assert "RoutingConfig" not in live["Properties"]


def test_every_invocation_permission_is_on_an_alias(template_json: Json) -> None:
    permissions = resources(template_json, "AWS::Lambda::Permission")
    aliases = {short: alias_ref(template_json, short) for short in FUNCTIONS if short != "payout"}
    assert len(permissions) >= 7  # API Gateway's six methods, the notify sweep's rule
    for permission in permissions.values():
        assert permission["Properties"]["FunctionName"] in aliases.values()


def test_the_state_machine_may_invoke_the_payout_alias_only(template_json: Json) -> None:
    invoking = [
        statement
        for _, _, statement in statements(template_json)
        if "lambda:InvokeFunction" in as_list(statement["Action"])
    ]
    assert [statement["Resource"] for statement in invoking] == [alias_ref(template_json, "payout")]
