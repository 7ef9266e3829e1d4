"""SnsNotifier on moto: an event published to a topic, read back from a subscribed queue."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from referrals.adapters.notify.sns import SnsNotifier
from referrals.domain.events import PAYOUT_COMPLETED, envelope, payout_completed
from referrals.domain.model import Event, PayoutRun, RunStatus


@dataclass(frozen=True)
class Aws:
    sns: Any
    sqs: Any
    topic_arn: str

    def subscribe_queue(self, name: str, **attributes: str) -> str:
        """A queue subscribed to the topic (SNS envelope, not raw); returns its URL."""
        url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "false", **attributes},
        )
        return url

    def notifications(self, queue_url: str) -> list[dict[str, Any]]:
        """Every SNS notification waiting in the queue, parsed from the SQS bodies."""
        messages = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def aws(aws_session: boto3.Session) -> Iterator[Aws]:
    with mock_aws():
        sns = aws_session.client("sns")
        sqs = aws_session.client("sqs")
        topic_arn = sns.create_topic(Name="referrals-events")["TopicArn"]
        yield Aws(sns, sqs, topic_arn)


def payout_event() -> Event:
    moment = datetime(2026, 4, 1, 0, 5, tzinfo=UTC)
    run = PayoutRun(
        "2026-03",
        RunStatus.COMPLETED,
        cutoff=datetime(2026, 4, 1, tzinfo=UTC),
        started_at=moment,
        referrer_count=2,
        referral_count=5,
        total_cents=7500,
        report_key="payouts/2026-03/report.csv",
        report_sha256="ab" * 32,
        completed_at=moment,
    )
    return payout_completed(run, moment)


def test_message_is_the_envelope(aws: Aws, event: Event) -> None:
    # Subscribers get the same wire body as webhook receivers.
    queue = aws.subscribe_queue("consumer")
    SnsNotifier(aws.sns, aws.topic_arn).deliver(event)

    [notification] = aws.notifications(queue)
    assert notification["Type"] == "Notification"
    assert notification["TopicArn"] == aws.topic_arn
    assert notification["Message"] == envelope(event).decode()


def test_subject_is_the_event_type(aws: Aws, event: Event) -> None:
    queue = aws.subscribe_queue("consumer")
    SnsNotifier(aws.sns, aws.topic_arn).deliver(event)

    [notification] = aws.notifications(queue)
    assert notification["Subject"] == event.type


def test_message_attributes_carry_the_type_and_event_id(aws: Aws, event: Event) -> None:
    # Subscribers filter on the type and dedupe on the id without parsing the body.
    queue = aws.subscribe_queue("consumer")
    SnsNotifier(aws.sns, aws.topic_arn).deliver(event)

    [notification] = aws.notifications(queue)
    assert notification["MessageAttributes"] == {
        "type": {"Type": "String", "Value": event.type},
        "event_id": {"Type": "String", "Value": event.id},
    }


def test_a_filter_policy_on_the_type_attribute_selects_events(aws: Aws, event: Event) -> None:
    # What the attributes are for: a finance queue gets payouts only.
    finance = aws.subscribe_queue("finance", FilterPolicy=json.dumps({"type": [PAYOUT_COMPLETED]}))
    notifier = SnsNotifier(aws.sns, aws.topic_arn)
    payout = payout_event()

    notifier.deliver(event)  # referral.created: filtered out
    notifier.deliver(payout)

    assert [n["MessageAttributes"]["event_id"]["Value"] for n in aws.notifications(finance)] == [
        payout.id
    ]


def test_publishing_to_a_missing_topic_raises(aws: Aws, event: Event) -> None:
    # A deleted topic or a wrong ARN must raise, so the outbox keeps the event and retries.
    missing = aws.topic_arn.rsplit(":", 1)[0] + ":no-such-topic"
    with pytest.raises(ClientError):
        SnsNotifier(aws.sns, missing).deliver(event)
