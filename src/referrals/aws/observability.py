"""Powertools for the handlers: JSON logs with a correlation id, X-Ray traces, EMF metrics.

Traces patch botocore alone: every call the functions make leaves through it (DynamoDB,
S3, SNS, Secrets Manager). Patching every library the X-Ray SDK knows would import, at
each cold start, each of them that is installed (sqlite3 among them), and record each AWS
call twice (its HTTP request again, through http.client). On Lambda the SDK samples
locally (the Lambda service decides): it makes no X-Ray client of its own.

`PayoutCents` and `RewardCents` are one value per currency, with a `Currency` dimension,
each in that currency's minor units: nothing sums different currencies.
"""

from collections.abc import Callable, Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from referrals.domain import events
from referrals.domain.model import Event
from referrals.domain.money import DEFAULT_CURRENCY
from referrals.ports import Notifier

logger = Logger(service="referrals")
tracer = Tracer(service="referrals", patch_modules=["botocore"])
metrics = Metrics(namespace="Referrals", service="referrals")


class MeasuredNotifier:
    """Counts the business metrics off the events it delivers: once per event, not per retry.

    `currency_of` names a program's currency (its rewards are in its minor units)."""

    def __init__(self, inner: Notifier, currency_of: Callable[[str], str]) -> None:
        self.inner = inner
        self.currency_of = currency_of

    def deliver(self, event: Event) -> None:
        self.inner.deliver(event)
        payload = event.payload
        if event.type == events.REFERRAL_CREATED:
            metrics.add_metric(name="Signups", unit=MetricUnit.Count, value=1)
            _in_currency("RewardCents", self._currency(payload), _cents(payload["reward_cents"]))
        elif event.type == events.SHARE_EARNED:  # the event names its sale's currency
            _in_currency("ShareCents", str(payload["currency"]), _cents(payload["share_cents"]))
        elif event.type == events.PAYOUT_COMPLETED:
            metrics.add_metric(name="PayoutsCompleted", unit=MetricUnit.Count, value=1)
            for currency, minor in _paid_per_currency(payload):
                _in_currency("PayoutCents", currency, minor)

    def _currency(self, payload: Mapping[str, object]) -> str:
        # An event written before it named its program (still in the outbox after an
        # upgrade) is the default program's, in USD, the one currency then.
        program = payload.get("program_id")
        return self.currency_of(program) if isinstance(program, str) else DEFAULT_CURRENCY


def _in_currency(name: str, currency: str, minor: int) -> None:
    """Metric `name` in one currency. An EMF document has one set of dimensions for all
    its metrics, so each currency's value goes out in a document of its own (now)."""
    dimensions = {"service": str(metrics.service), "Currency": currency}
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=minor,
        namespace=metrics.namespace,
        default_dimensions=dimensions,
    ):
        pass


def _paid_per_currency(payload: Mapping[str, object]) -> list[tuple[str, int]]:
    """(currency, minor units paid) of a `payout.completed` event. An event written by
    the release before `totals` (still in the outbox after an upgrade) has only
    `total_cents`, in USD, the one currency then."""
    totals = payload.get("totals")
    if not isinstance(totals, list):
        return [(DEFAULT_CURRENCY, _cents(payload.get("total_cents")))]
    return [
        (str(total["currency"]), _cents(total.get("total_cents")))
        for total in totals
        if isinstance(total, dict) and "currency" in total
    ]


def _cents(value: object) -> int:
    # Never negative: users owing are carried forward, not charged (as `metrics.Metrics`).
    return max(value, 0) if isinstance(value, int) else 0
