"""DynamoDB's payout run item: its totals per currency stay small (a list per currency,
the item far below 1 KB), and a run item the release before stored (no `totals`) reads
as USD totals of its own figures."""

import json
from datetime import UTC, datetime
from typing import Any

from referrals.adapters.dynamodb.expressions import from_item, to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.model import CurrencyTotal
from referrals.domain.periods import Period
from referrals.domain.program import Program, RuleVersion
from referrals.domain.tiers import TierSchedule
from referrals.services.payouts import run_payout
from referrals.services.programs import create_program
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.adapters.test_dynamodb_paid_with_run import clock, store
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

__all__ = ["clock", "store"]  # the fixtures: the store on moto (conftest), Nov 1st

OCTOBER = Period(2026, 10)
EARNED = datetime(2026, 10, 10, tzinfo=UTC)
RUN_KEY = to_item({"pk": "RUNS", "sk": "2026-10"})


def earn(store: DynamoStore, clock: FixedClock, program: str, rules: RuleVersion) -> None:
    code = enroll(store, clock, "alice", program=program).referrer.code
    sign_up(store, clock, rules, f"{program}-u1", code, signed_up_at=EARNED)


def stored_item(dynamodb_client: Any) -> dict[str, Any]:
    return from_item(dynamodb_client.get_item(TableName="paid-main", Key=RUN_KEY)["Item"])


def test_a_run_in_several_currencies_keeps_a_small_item(
    store: DynamoStore, dynamodb_client: Any, clock: FixedClock
) -> None:
    earn(store, clock, "default", RuleVersion())
    for currency in ("JPY", "KWD", "EUR"):
        rules = RuleVersion(program_id=currency.lower(), tiers=TierSchedule.parse("1:1234"))
        create_program(store, clock, "test", Program(currency.lower(), currency, currency), rules)
        earn(store, clock, currency.lower(), rules)

    run = run_payout(store, MemoryReports(), clock, OCTOBER)

    assert [(t.currency, t.total_cents) for t in run.totals] == [
        ("EUR", 1234),
        ("JPY", 1234),
        ("KWD", 1234),
        ("USD", 1000),
    ]
    item = stored_item(dynamodb_client)
    assert item["totals"][0] == ["EUR", 1, 1, 1234, 0, 0]
    # A rough upper bound of DynamoDB's item size (names and values as text).
    assert len(json.dumps(item, default=str)) < 800
    with store.read() as uow:
        assert uow.payouts.get("2026-10") == run


def test_a_run_item_of_the_release_before_reads_as_usd(
    store: DynamoStore, dynamodb_client: Any, clock: FixedClock
) -> None:
    earn(store, clock, "default", RuleVersion())
    run = run_payout(store, MemoryReports(), clock, OCTOBER)
    assert run.totals == (CurrencyTotal("USD", 1, 1, 1000, 0, 0),)
    dynamodb_client.update_item(
        TableName="paid-main",
        Key=RUN_KEY,
        UpdateExpression="REMOVE #t",
        ExpressionAttributeNames={"#t": "totals"},
    )
    assert "totals" not in stored_item(dynamodb_client)

    with store.read() as uow:
        assert uow.payouts.get("2026-10") == run
