from typing import Any

from referrals.domain.events import envelope
from referrals.domain.model import Event


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def deliver(self, event: Event) -> None:
        self.client.publish(
            TopicArn=self.topic_arn,
            Message=envelope(event).decode(),
            Subject=event.type,
            # Subscribers can filter on the type and dedupe on the id.
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": event.type},
                "event_id": {"DataType": "String", "StringValue": event.id},
            },
        )
