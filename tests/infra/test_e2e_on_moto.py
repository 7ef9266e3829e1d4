"""The deployed shape end to end on moto, built from the synthesized template itself.

Tables, bucket, topic and secret are created from the template's own resource
definitions, the functions get the template's own environment, then a signup
goes through the API handler, the payout handler runs with a tiny time budget
(so it must continue, as the state machine loops it), the report lands in S3,
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
from tests.aws.conftest import REGION, LambdaContext, rest_event, scheduled_event
from tests.infra.deployment import Resolver, create_from_template, function_environment


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
    return {"status": response["statusCode"], "body": json.loads(response["body"])}


def out_of_time() -> LambdaContext:
    """A Lambda with no time left after its first batch: every step does one batch."""
    return LambdaContext(remaining_ms=1)


def test_signup_payout_report_and_notifications(deployed: Any) -> None:
    clients, _ = deployed
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

    # The state machine: first the scheduled event, then the loop until done.
    state = payout.handler(scheduled_event("2026-11-01T00:00:00Z"), out_of_time())
    invocations = 1
    while not state["done"]:
        state = payout.handler({"period": state["period"], "owner": state["owner"]}, out_of_time())
        invocations += 1
    assert invocations == 3  # 7 rewards in batches of 3: it had to continue twice

    run = call_api("GET", "/v1/payouts/2026-10", key)["body"]
    assert run["status"] == "completed" and run["referral_count"] == 7
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
