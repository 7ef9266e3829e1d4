"""DynamoDB: a referee enrolled by their own signup is put just before the signup's
transaction, not in it; what a failed commit leaves is kept by the retry, or reads as
nothing."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.adapters.dynamodb.expressions import to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.errors import AlreadyReferred, Conflict
from referrals.domain.model import Referrer
from referrals.domain.program import RuleVersion
from referrals.services.referrers import enroll
from referrals.services.signups import SignupResult, sign_up
from tests.clocks import FixedClock
from tests.contract.conftest import dynamodb_store

NOW = datetime(2026, 11, 20, tzinfo=UTC)


class Crash(Exception):
    """The process died mid-commit."""


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoStore]:
    for store in dynamodb_store(monkeypatch):
        assert isinstance(store, DynamoStore)
        yield store


@pytest.fixture
def alices_code(store: DynamoStore) -> str:
    return enroll(store, FixedClock(NOW), "alice").referrer.code


def sent(store: DynamoStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every write the store sends from now on: (its kind, its item's key) on its own, or
    ("transaction", how many items)."""
    log: list[tuple[str, Any]] = []
    send, transact = store.tables.send, store.tables.transact

    def sending(write: dict[str, Any], **kwargs: Any) -> Any:
        [(kind, body)] = write.items()
        item = body.get("Item") or body["Key"]
        log.append((kind, (item["pk"]["S"], item["sk"]["S"])))
        return send(write, **kwargs)

    def transacting(writes: list[dict[str, Any]]) -> None:
        log.append(("transaction", len(writes)))
        transact(writes)

    monkeypatch.setattr(store.tables, "send", sending)
    monkeypatch.setattr(store.tables, "transact", transacting)
    return log


def test_the_referee_is_enrolled_just_before_the_transaction_code_claim_first(
    store: DynamoStore, alices_code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = sent(store, monkeypatch)
    result = sign_up(store, FixedClock(NOW), RuleVersion(), "bob", alices_code)
    assert result.referee_code is not None
    puts = [key for kind, key in log if kind == "Put"]
    assert puts[1:] == [(f"CODE#{result.referee_code}", "CODE"), ("REFERRER#bob", "PROFILE")]
    assert puts[0][0] == f"REFID#{result.referral.id}"  # the id claim, as before
    # The counter, the referral and its event: the enrollment is not in it.
    assert log[-1] == ("transaction", 3)


def test_a_crash_after_the_enrollment_leaves_the_referee_enrolled_and_the_retry_refers_them(
    store: DynamoStore, alices_code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FixedClock(NOW)
    transact = store.tables.transact

    def crashing(writes: list[dict[str, Any]]) -> None:
        raise Crash

    monkeypatch.setattr(store.tables, "transact", crashing)
    with pytest.raises(Crash):
        sign_up(store, clock, RuleVersion(), "bob", alices_code)
    with store.read() as uow:
        enrolled = uow.referrers.get("bob")
        assert enrolled is not None  # enrolled as a referrer, not referred yet
        assert uow.referrals.by_referee("bob") is None
        assert uow.referrers.get("alice").referral_count == 0  # type: ignore[union-attr]

    monkeypatch.setattr(store.tables, "transact", transact)
    retried = sign_up(store, clock, RuleVersion(), "bob", alices_code)
    assert not retried.replayed
    assert retried.referee_code == enrolled.code  # the enrollment is kept, not redone
    assert retried.referral.ordinal == 1
    with store.read() as uow:
        assert uow.referrals.by_referee("bob") == retried.referral
        assert uow.referrers.by_code(enrolled.code) == enrolled


def test_a_code_claim_left_by_a_profile_that_lost_is_nobodys_code(store: DynamoStore) -> None:
    bob = enroll(store, FixedClock(NOW), "bob").referrer
    rival = Referrer("bob", "ORPHAN-1", None, 0, NOW)
    with store.unit_of_work() as uow, pytest.raises(Conflict):
        uow.referrers.add(rival)
        uow.referrers.enroll_first("bob")
        uow.commit()
    key = to_item({"pk": "CODE#ORPHAN-1", "sk": "CODE"})
    put = store.tables.client.get_item(TableName=store.tables.main, Key=key)
    assert "Item" in put  # put before the profile, which lost
    with store.read() as uow:
        assert uow.referrers.by_code("ORPHAN-1") is None
        assert uow.referrers.by_code(bob.code) == bob
        assert uow.referrers.get("bob") == bob


def test_an_enrollment_on_its_own_stays_one_transaction(
    store: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A vanity code and its profile commit together: a code taken by another user must
    # leave no profile, and a user enrolled already no claim of a code.
    log = sent(store, monkeypatch)
    enroll(store, FixedClock(NOW), "carol", code="CAROL-1")
    assert log == [("transaction", 2)]


def test_one_referee_signing_up_with_two_codes_at_once_is_enrolled_and_referred_once(
    store: DynamoStore,
) -> None:
    clock = FixedClock(NOW)
    codes = [enroll(store, clock, name).referrer.code for name in ("alice", "carol")]

    def signup(n: int) -> SignupResult | AlreadyReferred:
        try:
            return sign_up(store, clock, RuleVersion(), "bob", codes[n % 2])
        except AlreadyReferred as refused:
            return refused

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(signup, range(16)))
    recorded = [r for r in results if isinstance(r, SignupResult)]
    with store.read() as uow:
        bob = uow.referrers.get("bob")
        referral = uow.referrals.by_referee("bob")
        assert bob is not None and referral is not None
        assert uow.referrers.by_code(bob.code) == bob
        counts = [uow.referrers.get(name).referral_count for name in ("alice", "carol")]  # type: ignore[union-attr]
    assert sorted(counts) == [0, 1]
    assert {r.referral for r in recorded} == {referral}
    assert {r.referee_code for r in recorded} == {bob.code}
    assert sum(not r.replayed for r in recorded) == 1
    refused = [r for r in results if isinstance(r, AlreadyReferred)]
    assert len(recorded) + len(refused) == 16
