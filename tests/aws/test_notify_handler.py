import secrets
from datetime import UTC, datetime, timedelta

from referrals.adapters.clock import SystemClock
from referrals.aws.notify import handler
from referrals.domain.model import Event, EventStatus, ulid
from referrals.domain.program import RuleVersion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.aws.conftest import Aws, LambdaContext

STREAM_ARN = (
    "arn:aws:dynamodb:us-east-2:123456789012:table/referrals-test-outbox"
    "/stream/2026-11-25T00:00:00.000"
)


def stream_insert(aws: Aws, event_id: str) -> dict[str, object]:
    """A DynamoDB Streams record for a new outbox item, as Lambda receives it."""
    with aws.store.read() as uow:
        event = uow.outbox.get(event_id)
    assert event is not None
    return {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-2",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1795600000,
                    "Keys": {"id": {"S": event_id}},
                    "NewImage": {"id": {"S": event_id}, "type": {"S": event.type}},
                    "SequenceNumber": "111",
                    "SizeBytes": 26,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": STREAM_ARN,
            }
        ]
    }


def test_new_outbox_item_is_published_to_sns_and_marked_delivered(aws: Aws) -> None:
    clock = SystemClock()
    code = enroll(aws.store, clock, "alice").referrer.code
    referral = sign_up(aws.store, clock, RuleVersion(), "bob", code).referral
    with aws.store.read() as uow:
        (event,) = uow.outbox.list(None, 10)
    result = handler(stream_insert(aws, event.id), LambdaContext())
    assert result == {"delivered": 1, "failed": 0, "dead": 0}
    (message,) = aws.messages()
    assert message["id"] == event.id and message["type"] == "referral.created"
    assert message["data"]["referral_id"] == referral.id
    with aws.store.read() as uow:
        assert uow.outbox.get(event.id).status is EventStatus.DELIVERED  # type: ignore[union-attr]


def test_sns_down_leaves_the_event_for_the_sweep(aws: Aws) -> None:
    clock = SystemClock()
    code = enroll(aws.store, clock, "alice").referrer.code
    sign_up(aws.store, clock, RuleVersion(), "bob", code)
    aws.sns.delete_topic(TopicArn=aws.topic_arn)
    with aws.store.read() as uow:
        (event,) = uow.outbox.list(None, 10)
    result = handler(stream_insert(aws, event.id), LambdaContext())
    assert result["failed"] == 1 and result["delivered"] == 0
    with aws.store.read() as uow:
        failed = uow.outbox.get(event.id)
    assert failed is not None and failed.status is EventStatus.PENDING and failed.attempts == 1


# The sweep, as EventBridge invokes it once a minute.
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-25T10:00:00Z",
    "region": "us-east-2",
    "resources": ["arn:aws:events:us-east-2:123456789012:rule/referrals-test-notify-sweep"],
    "detail": {},
}


def delivered_event(at: datetime) -> Event:
    """A delivered event made at `at`, its id minted then, as `new_id` mints one."""
    millis = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    event_id = ulid(millis << 80 | secrets.randbits(80))
    return Event(event_id, "referral.created", {}, at, status=EventStatus.DELIVERED, attempts=1)


def test_the_sweep_prunes_delivered_events_past_the_retention(aws: Aws) -> None:
    now = datetime.now(UTC)
    old, recent = delivered_event(now - timedelta(days=31)), delivered_event(now)
    with aws.store.unit_of_work() as uow:
        uow.outbox.add(old)
        uow.outbox.add(recent)
        uow.commit()

    result = handler(SCHEDULED, LambdaContext())

    assert result == {"delivered": 0, "failed": 0, "dead": 0, "pruned": 1}
    with aws.store.read() as uow:
        assert uow.outbox.get(old.id) is None
        assert uow.outbox.get(recent.id) is not None


def test_a_stream_invocation_delivers_and_leaves_pruning_to_the_sweep(aws: Aws) -> None:
    old = delivered_event(datetime.now(UTC) - timedelta(days=31))
    with aws.store.unit_of_work() as uow:
        uow.outbox.add(old)
        uow.commit()

    result = handler(stream_insert(aws, old.id), LambdaContext())

    assert "pruned" not in result
    with aws.store.read() as uow:
        assert uow.outbox.get(old.id) is not None
