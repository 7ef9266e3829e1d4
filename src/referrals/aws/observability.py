"""Powertools for the handlers: JSON logs with a correlation id, X-Ray traces, EMF metrics.

Traces patch botocore alone: every call the functions make leaves through it (DynamoDB,
S3, SNS, Secrets Manager). Patching every library the X-Ray SDK knows would import, at
each cold start, each of them that is installed (sqlite3 among them), and record each AWS
call twice (its HTTP request again, through http.client). On Lambda the SDK samples
locally (the Lambda service decides): it makes no X-Ray client of its own.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from referrals.domain import events
from referrals.domain.model import Event
from referrals.ports import Notifier

logger = Logger(service="referrals")
tracer = Tracer(service="referrals", patch_modules=["botocore"])
metrics = Metrics(namespace="Referrals", service="referrals")


class MeasuredNotifier:
    """Counts the business metrics off the events it delivers: once per event, not per retry."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner

    def deliver(self, event: Event) -> None:
        self.inner.deliver(event)
        payload = event.payload
        if event.type == events.REFERRAL_CREATED:
            metrics.add_metric(name="Signups", unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name="RewardCents", unit=MetricUnit.Count, value=_cents(payload["reward_cents"])
            )
        elif event.type == events.PAYOUT_COMPLETED:
            metrics.add_metric(name="PayoutsCompleted", unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name="PayoutCents", unit=MetricUnit.Count, value=_cents(payload["total_cents"])
            )


def _cents(value: object) -> int:
    return value if isinstance(value, int) else 0
