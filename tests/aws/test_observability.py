"""The handlers' business metrics off the events they deliver: a payout run's amount and
a signup's reward are one `PayoutCents` / `RewardCents` value per currency (a `Currency`
dimension), never a sum of dollars and yen, written as CloudWatch's embedded metric
format on stdout."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.aws.observability import MeasuredNotifier, metrics
from referrals.domain import events
from referrals.domain.model import CurrencyTotal, Event, PayoutRun, RunStatus

NOW = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)


class Delivered:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def deliver(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """The module's Metrics keeps what it was given until a handler flushes it."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def completed(*totals: CurrencyTotal) -> Event:
    run = PayoutRun(
        period="2026-10",
        status=RunStatus.COMPLETED,
        cutoff=datetime(2026, 11, 1, tzinfo=UTC),
        started_at=NOW,
        referrer_count=1,
        referral_count=4,
        total_cents=totals[0].total_cents if len(totals) == 1 else None,
        totals=totals,
    )
    return events.payout_completed(run, NOW)


def in_currencies(out: str, name: str) -> dict[str, Any]:
    """Each `name` document printed: its value by currency, and its dimensions."""
    found = {}
    for line in out.splitlines():
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        if [m["Name"] for m in directive["Metrics"]] == [name]:
            assert directive["Namespace"] == "Referrals"
            assert directive["Dimensions"] == [["service", "Currency"]]
            assert document["service"] == "referrals"
            found[document["Currency"]] = document[name]
    return found


def payout_cents(out: str) -> dict[str, Any]:
    return in_currencies(out, "PayoutCents")


CURRENCIES = {"default": "USD", "jp": "JPY"}


def measured(inner: Delivered) -> MeasuredNotifier:
    return MeasuredNotifier(inner, CURRENCIES.__getitem__)


def test_a_run_in_two_currencies_counts_each_apart(capsys: pytest.CaptureFixture[str]) -> None:
    event = completed(
        CurrencyTotal("JPY", 1, 2, total_cents=1000), CurrencyTotal("USD", 1, 2, total_cents=2000)
    )
    inner = Delivered()
    measured(inner).deliver(event)
    assert inner.events == [event]
    assert event.payload["total_cents"] is None  # what the metric read before: 0
    assert payout_cents(capsys.readouterr().out) == {"JPY": [1000.0], "USD": [2000.0]}
    flushed = metrics.serialize_metric_set()
    assert flushed["PayoutsCompleted"] == [1.0] and "PayoutCents" not in flushed


def test_a_run_in_one_currency_is_counted_in_it(capsys: pytest.CaptureFixture[str]) -> None:
    measured(Delivered()).deliver(completed(CurrencyTotal("KWD", 1, 3, total_cents=1234)))
    assert payout_cents(capsys.readouterr().out) == {"KWD": [1234.0]}


def test_an_event_written_before_totals_is_counted_in_dollars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Still in the outbox after the upgrade: the release before paid in USD alone."""
    event = completed(CurrencyTotal("USD", 1, 2, total_cents=2000))
    legacy = {k: v for k, v in event.payload.items() if k != "totals"}
    measured(Delivered()).deliver(Event(event.id, event.type, legacy, NOW))
    assert payout_cents(capsys.readouterr().out) == {"USD": [2000.0]}


def test_a_signup_counts_its_reward_in_its_programs_currency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for program, cents in (("jp", 500), ("default", 1000)):
        payload = {"referral_id": "r1", "program_id": program, "reward_cents": cents}
        measured(Delivered()).deliver(Event("e1", events.REFERRAL_CREATED, payload, NOW))
    out = capsys.readouterr().out
    assert in_currencies(out, "RewardCents") == {"JPY": [500.0], "USD": [1000.0]}
    assert payout_cents(out) == {}
    flushed = metrics.serialize_metric_set()
    assert flushed["Signups"] == [1.0, 1.0] and "RewardCents" not in flushed


def test_a_signup_event_written_before_it_named_its_program_is_counted_in_dollars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = {"referral_id": "r1", "reward_cents": 500, "status": "pending"}
    measured(Delivered()).deliver(Event("e1", events.REFERRAL_CREATED, payload, NOW))
    assert in_currencies(capsys.readouterr().out, "RewardCents") == {"USD": [500.0]}


def test_a_revenue_share_is_counted_in_its_sales_currency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    payload = {"reward_id": "w1", "sale_id": "in_1", "currency": "JPY", "share_cents": 499}
    measured(Delivered()).deliver(Event("e1", events.SHARE_EARNED, payload, NOW))
    out = capsys.readouterr().out
    assert in_currencies(out, "ShareCents") == {"JPY": [499.0]}
    assert in_currencies(out, "RewardCents") == {} and payout_cents(out) == {}
