"""DynamoDB's id claims, put just before a signup's transaction rather than in it: a claim
left by a transaction that failed reads as nothing, and a taken id writes nothing."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.adapters.dynamodb.expressions import to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.errors import Conflict
from referrals.domain.model import Referral, new_id
from referrals.domain.program import RuleVersion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock


@pytest.fixture
def store(dynamodb_client: Any) -> DynamoStore:
    store = DynamoStore(dynamodb_client, "claims")
    store.create_tables()
    return store


@pytest.fixture
def bobs(store: DynamoStore) -> Referral:
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    code = enroll(store, clock, "alice").referrer.code
    return sign_up(store, clock, RuleVersion(), "bob", code).referral


def claim_of(dynamodb_client: Any, referral_id: str) -> dict[str, Any] | None:
    key = to_item({"pk": f"REFID#{referral_id}", "sk": "REFID"})
    found: dict[str, Any] | None = dynamodb_client.get_item(TableName="claims-main", Key=key).get(
        "Item"
    )
    return found


def test_a_claim_left_by_a_failed_transaction_reads_as_nothing(
    store: DynamoStore, dynamodb_client: Any, bobs: Referral
) -> None:
    again = replace(bobs, id=new_id(datetime.now(UTC)))  # bob is referred already
    with store.unit_of_work() as uow, pytest.raises(Conflict):
        uow.referrals.add(again)
        uow.commit()
    assert claim_of(dynamodb_client, again.id) is not None  # put before the transaction failed
    with store.read() as uow:
        assert uow.referrals.get(again.id) is None  # it names bob, whose referral is another
        assert uow.referrals.get(bobs.id) == bobs


def test_a_taken_id_makes_the_commit_a_conflict_and_writes_nothing_else(
    store: DynamoStore, dynamodb_client: Any, bobs: Referral
) -> None:
    carols = replace(bobs, referee_id="carol")  # bob's id again
    with store.unit_of_work() as uow, pytest.raises(Conflict):
        uow.referrals.add(carols)
        uow.commit()
    with store.read() as uow:
        assert uow.referrals.by_referee("carol") is None
        assert uow.referrals.get(bobs.id) == bobs
