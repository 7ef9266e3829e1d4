"""DynamoDB only: a referral is found by id the moment its signup commits.

Global secondary indexes are eventually consistent; moto updates them at once,
so the lag is simulated by a store whose `by_id` queries find nothing, as a real
index may right after a write. The id claim (`REFID#<id>` / `REFID`) is read
with consistent GetItems instead; referrals written before claims existed are
still found through the index.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from referrals.adapters.dynamodb.expressions import to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.model import Receipt, ReferralStatus
from referrals.domain.program import RuleVersion, Trigger
from referrals.services.conversions import record_conversion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.contract.conftest import dynamodb_store
from tests.contract.test_store import add_referrer, referral, referrer

AWAITING, PENDING, HELD = ReferralStatus.AWAITING, ReferralStatus.PENDING, ReferralStatus.HELD
DOUBLE_SIDED_ON_PURCHASE = RuleVersion(
    trigger=Trigger.CONVERSION, hold=timedelta(days=7), referee_reward_cents=500
)


@pytest.fixture
def dynamo(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoStore]:
    for store in dynamodb_store(monkeypatch):
        assert isinstance(store, DynamoStore)
        yield store


class IndexLag:
    """Makes the store's `by_id` queries find nothing while `lagging` is set."""

    def __init__(self, store: DynamoStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lagging = True
        self.by_id_queries = 0
        query = store.tables.query

        def lagging_query(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if kwargs.get("index") == "by_id":
                self.by_id_queries += 1
                if self.lagging:
                    return iter(())
            return query(*args, **kwargs)

        monkeypatch.setattr(store.tables, "query", lagging_query)


def add(store: DynamoStore, *referrals: Any) -> None:
    with store.unit_of_work() as uow:
        for r in referrals:
            uow.referrals.add(r)
        uow.commit()


def drop_claim(store: DynamoStore, referral_id: str) -> None:
    """Make a referral look like one written before id claims existed."""
    key = {"pk": f"REFID#{referral_id}", "sk": "REFID"}
    assert store.tables.get(store.tables.main, key) is not None
    store.tables.client.delete_item(TableName=store.tables.main, Key=to_item(key))


def test_the_claim_holds_the_referral_items_key(dynamo: DynamoStore) -> None:
    add_referrer(dynamo, referrer("alice", "A1"))
    r = referral("alice", "bob", 1)
    add(dynamo, r)
    claim = dynamo.tables.get(dynamo.tables.main, {"pk": f"REFID#{r.id}", "sk": "REFID"})
    assert claim == {
        "pk": f"REFID#{r.id}",
        "sk": "REFID",
        "referee_id": "bob",
        "program_id": "default",
    }


def test_a_just_added_referral_is_found_while_the_index_lags(
    dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_referrer(dynamo, referrer("alice", "A1"))
    pending = referral("alice", "bob", 1)
    awaiting = referral("alice", "carol", 2, status=AWAITING)
    add(dynamo, pending, awaiting)
    lag = IndexLag(dynamo, monkeypatch)
    with dynamo.read() as uow:
        assert uow.referrals.get(pending.id) == pending
        assert uow.referrals.get(awaiting.id) == awaiting
        assert uow.referrals.get("no-such-id") is None  # no claim: the (lagging) index
    assert lag.by_id_queries == 1  # only for the id without a claim

    with dynamo.unit_of_work() as uow:
        held = uow.referrals.transition(pending.id, {PENDING}, HELD, "flagged")
        assert held == replace(pending, status=HELD, note="flagged")
        receipt = Receipt("conversion:purchase", 1, 1000)
        hold = timedelta(days=3)
        qualified = uow.referrals.qualify(awaiting.id, PENDING, hold, receipt, 1000)
        assert qualified == replace(awaiting, status=PENDING, hold=hold, receipt=receipt)
        uow.commit()
    with dynamo.read() as uow:
        assert uow.referrals.get(pending.id) == held
        assert uow.referrals.get(awaiting.id) == qualified
    assert lag.by_id_queries == 1


def count_transactions(dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each TransactWriteItems the store sends from now on."""
    transactions: list[int] = []
    transact = dynamo.tables.transact

    def counting(writes: list[dict[str, Any]]) -> None:
        transactions.append(len(writes))
        transact(writes)

    monkeypatch.setattr(dynamo.tables, "transact", counting)
    return transactions


def test_a_conversion_right_after_the_signup_earns_the_reward(
    dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock()
    enroll(dynamo, clock, "alice", code="ALICE-1")
    transactions = count_transactions(dynamo, monkeypatch)
    IndexLag(dynamo, monkeypatch)
    program = DOUBLE_SIDED_ON_PURCHASE
    signed_up = sign_up(dynamo, clock, program, "bob", "ALICE-1").referral
    assert signed_up.status is AWAITING
    # The referral, the referrer's counter, the event and the referee's signup slot
    # (so a conversion racing the signup retries and finds it): four of the 100
    # allowed. The id claim and the referee's enrollment (code claim, profile) are
    # put just before, each on its own (transaction.claim_id, send_first).
    assert transactions == [4]

    result = record_conversion(dynamo, clock, program, "bob", "purchase", "order-1", 4999)
    assert result.referral is not None and result.referral.id == signed_up.id
    assert result.referral.status is PENDING
    with dynamo.read() as uow:
        assert uow.referrals.get(signed_up.id) == result.referral
        [bonus] = uow.rewards.for_referral(signed_up.id)
    assert (bonus.user_id, bonus.cents) == ("bob", 500)
    # A replay of the conversion finds the referral by id as well.
    replay = record_conversion(dynamo, clock, program, "bob", "purchase", "order-1", 4999)
    assert replay.replayed and replay.referral == result.referral


def test_the_worst_signup_transaction_stays_small(
    dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Double-sided, paid on signup, the referee enrolled by it: the referee's reward
    # (its id claim put on its own, as the referral's) instead of the signup slot.
    clock = FixedClock()
    enroll(dynamo, clock, "alice", code="ALICE-1")
    transactions = count_transactions(dynamo, monkeypatch)
    program = replace(DOUBLE_SIDED_ON_PURCHASE, trigger=Trigger.SIGNUP)
    signed_up = sign_up(dynamo, clock, program, "bob", "ALICE-1").referral
    assert transactions == [4]
    with dynamo.read() as uow:
        assert uow.referrals.get(signed_up.id) == signed_up
        assert [r.user_id for r in uow.rewards.for_referral(signed_up.id)] == ["bob"]


def test_a_referral_without_a_claim_is_found_through_the_index(
    dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_referrer(dynamo, referrer("alice", "A1"))
    pending = referral("alice", "bob", 1)
    awaiting = referral("alice", "carol", 2, status=AWAITING)
    add(dynamo, pending, awaiting)
    drop_claim(dynamo, pending.id)
    drop_claim(dynamo, awaiting.id)
    lag = IndexLag(dynamo, monkeypatch)
    lag.lagging = False  # an old item is long in the index

    with dynamo.read() as uow:
        assert uow.referrals.get(pending.id) == pending
    with dynamo.unit_of_work() as uow:
        held = uow.referrals.transition(pending.id, {PENDING}, HELD, "flagged")
        assert held == replace(pending, status=HELD, note="flagged")
        receipt = Receipt("conversion:purchase", 1, 1000)
        qualified = uow.referrals.qualify(awaiting.id, PENDING, timedelta(0), receipt, 1000)
        assert qualified == replace(awaiting, status=PENDING, receipt=receipt)
        uow.commit()
    with dynamo.read() as uow:
        assert uow.referrals.get(pending.id) == held
        assert uow.referrals.get(awaiting.id) == qualified
    assert lag.by_id_queries == 5  # every lookup of the two went through the index
