"""DynamoDB's rewards paid with their run (run_states): written once when assigned, read as
processing until the run completes and as paid from then on, whatever reads them; a
run the earlier release started (rewards stored as processing) is still paid; a
pending event is listed from the `due` index alone."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from referrals.adapters.dynamodb.expressions import from_item, to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.errors import PayoutFailed
from referrals.domain.events import referral_created
from referrals.domain.model import EventStatus, ReferralStatus, RunStatus, new_id
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.services.payouts import run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

OCTOBER = Period(2026, 10)
PENDING, PROCESSING, PAID = ReferralStatus.PENDING, ReferralStatus.PROCESSING, ReferralStatus.PAID


@pytest.fixture
def store(dynamodb_client: Any) -> DynamoStore:
    store = DynamoStore(dynamodb_client, "paid")
    store.create_tables()
    return store


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 1, 0, 5, tzinfo=UTC))


def earn(store: DynamoStore, clock: FixedClock, count: int) -> list[str]:
    code = enroll(store, clock, "alice").referrer.code
    at = datetime(2026, 10, 10, tzinfo=UTC)
    return [
        sign_up(store, clock, RuleVersion(), f"u{n}", code, signed_up_at=at).referral.id
        for n in range(count)
    ]


def failed_run(store: DynamoStore, clock: FixedClock) -> None:
    """October's run, stopped after assigning (the report store is down)."""
    reports = MemoryReports()
    reports.failing = True
    with pytest.raises(PayoutFailed):
        run_payout(store, reports, clock, OCTOBER)


def raw(dynamodb_client: Any, referee: str) -> dict[str, Any]:
    key = to_item({"pk": f"REFEREE#{referee}", "sk": "REFERRAL"})
    return from_item(dynamodb_client.get_item(TableName="paid-main", Key=key)["Item"])


def states(store: DynamoStore, ids: list[str]) -> set[ReferralStatus]:
    with store.read() as uow:
        return {uow.referrals.get(i).status for i in ids}  # type: ignore[union-attr]


def searched(store: DynamoStore, status: ReferralStatus) -> list[str]:
    with store.read() as uow:
        return [r.id for r in uow.referrals.search(status, None, None, 100)]


def test_an_assigned_reward_is_written_once_and_reads_as_processing_until_its_run_completes(
    store: DynamoStore, dynamodb_client: Any, clock: FixedClock
) -> None:
    ids = earn(store, clock, 3)
    failed_run(store, clock)
    item = raw(dynamodb_client, "u0")
    assert "status_pk" not in item and item["paid_with_run"]  # out of `by_status`
    assert states(store, ids) == {PROCESSING}
    assert sorted(ids) == searched(store, PROCESSING)
    assert searched(store, PAID) == []
    with store.read() as uow:
        earnings = uow.referrers.earnings("alice", clock.now())
        assert (earnings.payable_cents, earnings.paid_cents) == (3000, 0)

    run = run_payout(store, MemoryReports(), clock, OCTOBER)  # the schedule's retry

    assert run.status is RunStatus.COMPLETED and run.referral_count == 3
    assert states(store, ids) == {PAID}
    assert searched(store, PAID) == sorted(ids)
    assert searched(store, PROCESSING) == []
    with store.read() as uow:
        earnings = uow.referrers.earnings("alice", clock.now())
        assert (earnings.payable_cents, earnings.paid_cents) == (0, 3000)
        assert {t.status for t in uow.stats.signups(datetime(2026, 10, 1, tzinfo=UTC))} == {PAID}
        assert [t.status for t in uow.stats.unsettled()] == []


def test_paid_ones_stored_so_and_paid_with_a_run_are_listed_together_in_id_order(
    store: DynamoStore, clock: FixedClock
) -> None:
    ids = earn(store, clock, 4)
    run_payout(store, MemoryReports(), clock, OCTOBER)
    with store.unit_of_work() as uow:  # a paid reward's state moves on: stored again
        clawed = uow.referrals.transition(ids[1], {PAID}, ReferralStatus.CLAWED_BACK, "refund")
        assert clawed is not None
        uow.commit()
    with store.unit_of_work() as uow:  # and one imported as paid: stored so, in `by_status`
        first = uow.referrals.get(ids[0])
        assert first is not None
        imported = replace(first, id=new_id(clock.now()), referee_id="old", ordinal=9)
        uow.referrals.add(replace(imported, status=PAID, payout_period="2026-09"))
        uow.commit()
    paid = sorted([ids[0], ids[2], ids[3], imported.id])
    assert searched(store, PAID) == paid
    with store.read() as uow:  # the next page after the first
        page = uow.referrals.search(PAID, None, paid[0], 1)
    assert [r.id for r in page] == [paid[1]]
    assert states(store, [ids[1]]) == {ReferralStatus.CLAWED_BACK}


def test_a_run_the_earlier_release_assigned_as_processing_is_paid_item_by_item(
    store: DynamoStore, dynamodb_client: Any, clock: FixedClock
) -> None:
    ids = earn(store, clock, 2)
    failed_run(store, clock)
    for referee in ("u0", "u1"):  # as the earlier release stored an assigned reward
        dynamodb_client.update_item(
            TableName="paid-main",
            Key=to_item({"pk": f"REFEREE#{referee}", "sk": "REFERRAL"}),
            UpdateExpression="SET status_pk = :p REMOVE paid_with_run",
            ExpressionAttributeValues=to_item({":p": PROCESSING.value}),
        )
    assert searched(store, PROCESSING) == sorted(ids)

    run_payout(store, MemoryReports(), clock, OCTOBER)

    assert raw(dynamodb_client, "u0")["status_pk"] == PAID.value
    assert states(store, ids) == {PAID}


def test_a_pending_event_is_listed_from_the_due_index_and_enters_by_status_once_delivered(
    store: DynamoStore, dynamodb_client: Any, clock: FixedClock
) -> None:
    ids = earn(store, clock, 1)
    with store.read() as uow:
        referral = uow.referrals.get(ids[0])
    assert referral is not None
    event = referral_created(referral, clock.now())
    with store.unit_of_work() as uow:
        uow.outbox.add(event)
        uow.commit()
    item = dynamodb_client.get_item(TableName="paid-outbox", Key=to_item({"id": event.id}))["Item"]
    assert "status" not in item and item["due_pk"] == {"S": "PENDING"}
    with store.read() as uow:
        assert event.id in {e.id for e in uow.outbox.list(EventStatus.PENDING, 10)}
        assert uow.outbox.get(event.id).status is EventStatus.PENDING  # type: ignore[union-attr]
    with store.unit_of_work() as uow:
        claimed = uow.outbox.claim_due(clock.now(), clock.now() + timedelta(minutes=1), 10)
        assert event.id in {e.id for e in claimed}
        uow.outbox.delivered([event.id])
        uow.commit()
    with store.read() as uow:
        assert event.id in {e.id for e in uow.outbox.list(EventStatus.DELIVERED, 10)}
        assert event.id not in {e.id for e in uow.outbox.list(EventStatus.PENDING, 10)}
