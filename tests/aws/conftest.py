"""Handlers run against moto with real-shaped events; the adapters are the real boto3 ones."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals.adapters.dynamodb.store import DynamoStore
from referrals.aws import api
from referrals.aws.runtime import services

REGION = "us-east-2"
ACCOUNT = "123456789012"
PREFIX = "referrals-test"
BUCKET = "referrals-test-reports"
TOPIC = "referrals-test-events"


@dataclass
class LambdaContext:
    """The attributes Lambda passes in its context object; `remaining_ms` is settable."""

    function_name: str = "referrals-test-fn"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:referrals-test-fn"
    aws_request_id: str = "6f1b2c3d-0000-4000-8000-000000000000"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Aws:
    store: DynamoStore
    s3: Any
    sns: Any
    sqs: Any
    topic_arn: str
    queue_url: str

    def messages(self) -> list[dict[str, Any]]:
        """Every SNS message that reached the subscribed queue, as the event envelopes."""
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return found
            for message in batch["Messages"]:
                found.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "Referrals",
        "REFERRALS_DATABASE_URL": f"dynamodb://{PREFIX}",
        "REFERRALS_REPORTS_URL": f"s3://{BUCKET}/",
        "REFERRALS_NOTIFY_URL": f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}",
        "REFERRALS_SCHEDULER": "off",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        store = DynamoStore(boto3.client("dynamodb", region_name=REGION), PREFIX)
        store.create_tables()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="listener")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
        )
        services.cache_clear()
        api._adapter = None
        yield Aws(store, s3, sns, sqs, topic_arn, queue_url)
        services.cache_clear()
        api._adapter = None


@dataclass
class PayoutMachine:
    """The payout state machine in moto: it records executions, and runs none of them
    (a test drives the payout function with an execution's input, as the machine would)."""

    client: Any
    arn: str

    def executions(self) -> list[dict[str, Any]]:
        """Every execution, each described (its name, status and input)."""
        listed = self.client.list_executions(stateMachineArn=self.arn)["executions"]
        return [self.client.describe_execution(executionArn=e["executionArn"]) for e in listed]


@pytest.fixture
def payout_machine(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> PayoutMachine:
    """A state machine named as the stack names it, and the API function told of it, as
    the stack tells it (REFERRALS_PAYOUT_STATE_MACHINE_ARN)."""
    client = boto3.client("stepfunctions", region_name=REGION)
    arn = client.create_state_machine(
        name=f"{PREFIX}-payout",
        definition=json.dumps({"StartAt": "Paid", "States": {"Paid": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-payout-states",
    )["stateMachineArn"]
    monkeypatch.setenv("REFERRALS_PAYOUT_STATE_MACHINE_ARN", arn)
    return PayoutMachine(client, arn)


def rest_event(
    method: str, path: str, body: object | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy integration event, as API Gateway sends it."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {
            "Content-Type": "application/json",
            "Host": "api.example.com",
            **(headers or {}),
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "Xyz=",
            "requestTime": "25/Nov/2026:10:00:00 +0000",
            "path": f"/prod{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "api",
            "requestTimeEpoch": 1795600000000,
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8"},
            "domainName": "api.example.com",
            "apiId": "a1b2c3d4e5",
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def scheduled_event(time: str) -> dict[str, Any]:
    """An EventBridge Scheduled Event, as the rule `cron(0 0 1 * ? *)` sends it."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/referrals-test-monthly-payout"],
        "detail": {},
    }
