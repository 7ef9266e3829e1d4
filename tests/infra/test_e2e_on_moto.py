"""The deployed shape end to end on moto, built from the synthesized template itself.

Tables, bucket, topic, secret and the payout state machine are created from the
template's own resource definitions, the functions get the template's own
environment, then a signup goes through the API handler, `POST /v1/payouts`
answers 202 and starts an execution of the state machine, whose synthesized
definition is run on that execution's input: the payout handler runs with a tiny
time budget (so it must continue, as the machine loops it), the report lands in S3,
and the notifications are read back through an SQS subscription to the topic.
"""

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals.adapters.clock import SystemClock
from referrals.aws import api, notify, payout
from referrals.aws.runtime import services
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.aws.conftest import REGION, LambdaContext, rest_event
from tests.infra.deployment import (
    Resolver,
    create_from_template,
    function_environment,
    run_execution,
)


@pytest.fixture
def deployed(template_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        resolve = Resolver()
        clients = create_from_template(template_json, resolve)
        for name, value in function_environment(template_json, resolve).items():
            monkeypatch.setenv(name, value)
        # Only the payout step runs with a batch this small: it must continue.
        monkeypatch.setenv("REFERRALS_PAYOUT_BATCH_SIZE", "3")
        services.cache_clear()
        api._adapter = None
        yield clients, resolve
        services.cache_clear()
        api._adapter = None


def call_api(method: str, path: str, key: str | None, body: object = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = api.handler(rest_event(method, path, body, headers), LambdaContext())
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return {
        "status": response["statusCode"],
        "body": json.loads(response["body"]),
        "location": headers.get("location"),
    }


def out_of_time() -> LambdaContext:
    """A Lambda with no time left after its first batch: every step does one batch."""
    return LambdaContext(remaining_ms=1)


def _payout_alias(template_json: dict[str, Any]) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Alias"
        and resource["Properties"]["FunctionName"]["Ref"].startswith("PayoutFunction")
    ]
    return str(logical_id)


def test_signup_payout_report_and_notifications(
    deployed: Any, template_json: dict[str, Any]
) -> None:
    clients, resolve = deployed
    key, _ = create_key(services().store, SystemClock(), Role.ADMIN)
    assert (
        call_api("POST", "/v1/referrers", key, {"user_id": "alice", "code": "ALICE"})["status"]
        == 201
    )
    # The API signs portal links with the stack's generated secret, read at its cold start.
    assert len(services().settings.secret_key) == 64
    for n in range(7):
        body = {
            "user_id": f"u{n}",
            "referral_code": "alice",
            "signed_up_at": "2026-10-05T12:00:00Z",
        }
        assert call_api("POST", "/v1/signups", key, body)["status"] == 201
    legacy = call_api("POST", "/signup", key, {"userId": "late", "referralCode": "ALICE"})
    assert legacy["status"] == 200 and legacy["body"]["referralCount"] == 8

    # The API starts the state machine (it would not finish within API Gateway's 29 s).
    started = call_api("POST", "/v1/payouts", key, {"period": "2026-10"})
    assert started["status"] == 202 and started["location"] == "/v1/payouts/2026-10"
    machines = clients["stepfunctions"]
    execution = machines.describe_execution(executionArn=started["body"]["execution_arn"])
    assert execution["status"] == "RUNNING"
    assert call_api("GET", "/v1/payouts/2026-10", key)["status"] == 404  # nothing paid yet

    # The execution, as Step Functions runs the synthesized definition: its task invokes
    # the payout function's alias with the execution's input, then loops until done.
    definition = machines.describe_state_machine(stateMachineArn=execution["stateMachineArn"])
    invoked = []

    def invoke(resource: str, state: dict[str, Any]) -> dict[str, Any]:
        invoked.append(resource)
        answer: dict[str, Any] = payout.handler(state, out_of_time())
        return answer

    path = run_execution(definition["definition"], json.loads(execution["input"]), invoke)
    assert path[-1] == "Paid"
    # 7 rewards in batches of 3: it had to continue twice.
    assert invoked == [resolve.refs[_payout_alias(template_json)]] * 3
    assert invoked[0].endswith(":function:referrals-prod-payout:live")

    run = call_api("GET", "/v1/payouts/2026-10", key)["body"]
    assert run["status"] == "completed" and run["referral_count"] == 7
    # Posted again once paid: the stored run, and no second execution.
    assert call_api("POST", "/v1/payouts", key, {"period": "2026-10"}) == {
        "status": 200,
        "body": run,
        "location": None,
    }
    listed = machines.list_executions(stateMachineArn=execution["stateMachineArn"])
    assert len(listed["executions"]) == 1
    assert run["total_cents"] == 4 * 1000 + 3 * 1500
    bucket = services().settings.reports_url.removeprefix("s3://").rstrip("/")
    report = clients["s3"].get_object(Bucket=bucket, Key="payouts/2026-10/report.csv")
    rows = list(csv.DictReader(io.StringIO(report["Body"].read().decode())))
    assert rows == [
        {
            "period": "2026-10",
            "referrer_id": "alice",
            "referral_count": "7",
            "amount_cents": "8500",
            "amount": "85.00",
            "currency": "USD",
            "program": "default",
        }
    ]

    # Notifications: subscribe a queue, let the stream-triggered function deliver.
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="listener")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    topic_arn = services().settings.notify_url
    clients["sns"].subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
    )
    insert = {"Records": [{"eventName": "INSERT", "eventSource": "aws:dynamodb"}]}
    assert notify.handler(insert, LambdaContext())["delivered"] == 9
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            messages.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    types = sorted(m["type"] for m in messages)
    assert types == ["payout.completed"] + ["referral.created"] * 8
    (completed,) = [m for m in messages if m["type"] == "payout.completed"]
    assert completed["data"]["report_sha256"] == run["report_sha256"]
