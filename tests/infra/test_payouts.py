"""payouts.py: the monthly and hourly rules and the state machine that loops the payout function."""

import json

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import PREFIX, Json, alias_ref, arn, find, ref, render


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
    # The alias, whose published version has a SnapStart snapshot; never the function.
    assert task["Resource"] == render(alias_ref(template_json, "payout"), template_json)
    assert task["Resource"].endswith(f":function:{PREFIX}-payout:live")
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
