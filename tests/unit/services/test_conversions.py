from datetime import timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import ConversionConflict, InvalidInput
from referrals.domain.model import ReferralStatus, RewardKind
from referrals.domain.program import RuleVersion, Trigger
from referrals.services.conversions import record_conversion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

ON_PURCHASE = RuleVersion(
    trigger=Trigger.CONVERSION,
    conversion_min_cents=1000,
    hold=timedelta(days=7),
    referee_reward_cents=500,
)


@pytest.fixture
def awaiting(store: MemoryStore, clock: FixedClock) -> str:
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, ON_PURCHASE, "bob", "ALICE-1").referral
    assert referral.status is ReferralStatus.AWAITING
    assert referral.receipt is not None and referral.receipt.rule == "awaiting conversion"
    with store.read() as uow:
        assert list(uow.rewards.for_referral(referral.id)) == []  # nothing earned yet
    return referral.id


def test_a_qualifying_conversion_earns_the_reward_from_then_on(
    store: MemoryStore, clock: FixedClock, awaiting: str
) -> None:
    clock.advance(days=3)
    result = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "order-1", 4999)
    referral = result.referral
    assert referral is not None and referral.id == awaiting and not result.replayed
    assert referral.status is ReferralStatus.PENDING
    assert referral.payable_at == clock.now() + timedelta(days=7)
    assert referral.receipt is not None and referral.receipt.rule == "conversion:purchase"
    with store.read() as uow:
        [bonus] = uow.rewards.for_referral(awaiting)
        event_types = [e.type for e in uow.outbox.list(None, 10)]
    assert (bonus.kind, bonus.user_id, bonus.cents, bonus.payable_at) == (
        RewardKind.REFEREE,
        "bob",
        500,
        referral.payable_at,
    )
    assert "referral.qualified" in event_types


@pytest.mark.parametrize(
    ("event", "value"), [("signup", 5000), ("purchase", 999), ("purchase", None)]
)
def test_other_events_are_recorded_but_earn_nothing(
    store: MemoryStore, clock: FixedClock, awaiting: str, event: str, value: int | None
) -> None:
    result = record_conversion(store, clock, ON_PURCHASE, "bob", event, "e-1", value)
    assert result.referral is None and result.conversion.referral_id is None
    with store.read() as uow:
        assert uow.referrals.get(awaiting).status is ReferralStatus.AWAITING  # type: ignore[union-attr]
        assert uow.conversions.get("e-1") == result.conversion


def test_only_the_first_qualifying_conversion_earns(
    store: MemoryStore, clock: FixedClock, awaiting: str
) -> None:
    first = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", 2000)
    second = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-2", 2000)
    assert first.referral is not None and second.referral is None
    with store.read() as uow:
        assert len(uow.rewards.for_referral(awaiting)) == 1


def test_a_replay_answers_the_first_result_and_another_body_is_refused(
    store: MemoryStore, clock: FixedClock, awaiting: str
) -> None:
    first = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", 2000)
    clock.advance(hours=1)
    again = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", 2000)
    assert again.replayed and again.conversion == first.conversion
    assert again.referral == first.referral
    with pytest.raises(ConversionConflict):
        record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", 3000)


def test_a_flagged_signup_is_held_when_it_converts(store: MemoryStore, clock: FixedClock) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    sign_up(store, clock, ON_PURCHASE, "bob", "ALICE-1", "bob@mailinator.com")
    referral = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o", 1000).referral
    assert referral is not None and referral.status is ReferralStatus.HELD
    with store.read() as uow:
        assert [e.status for e in uow.rewards.for_referral(referral.id)] == [ReferralStatus.HELD]


def test_a_signup_program_records_conversions_without_rewards(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, program, "bob", "ALICE-1").referral
    assert referral.status is ReferralStatus.PENDING
    result = record_conversion(store, clock, program, "bob", "purchase", "o-1", 5000)
    assert result.referral is None


def test_bad_input_writes_nothing(store: MemoryStore, clock: FixedClock) -> None:
    with pytest.raises(InvalidInput):
        record_conversion(store, clock, ON_PURCHASE, "bad user", "purchase", "o-1")
    with pytest.raises(InvalidInput):
        record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", -1)
    with store.read() as uow:
        assert uow.conversions.get("o-1") is None


def test_the_caps_price_the_reward_when_it_is_earned(store: MemoryStore, clock: FixedClock) -> None:
    program = RuleVersion(trigger=Trigger.CONVERSION, monthly_cap_cents=1500)
    enroll(store, clock, "alice", code="ALICE-1")
    for referee in ("bob", "carol", "dave"):
        sign_up(store, clock, program, referee, "ALICE-1")  # nothing earned yet: no cap
    clock.advance(days=31)  # April: the conversions earn in April
    earned = [
        record_conversion(store, clock, program, user, "purchase", f"o-{user}", 100).referral
        for user in ("carol", "bob")
    ]
    assert [(r.referee_id, r.reward_cents) for r in earned if r] == [
        ("carol", 1000),
        ("bob", 500),
    ]
    assert earned[1] is not None and earned[1].receipt is not None
    assert earned[1].receipt.cap == "monthly"
    with store.read() as uow:
        alice = uow.referrers.get("alice")
    assert alice is not None and alice.cap_counters == (1500, "2026-04", 1500)


def test_a_conversion_reported_before_the_signup_earns_the_referral_at_signup(
    store: MemoryStore, clock: FixedClock
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    early = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-1", 2000)
    assert early.referral is None and early.conversion.awaits_signup
    clock.advance(minutes=5)
    referral = sign_up(store, clock, ON_PURCHASE, "bob", "ALICE-1").referral
    assert referral.status is ReferralStatus.PENDING
    assert referral.receipt is not None and referral.receipt.rule == "conversion:purchase"
    assert referral.payable_at == clock.now() + ON_PURCHASE.hold  # earned at the signup
    with store.read() as uow:
        [bonus] = uow.rewards.for_referral(referral.id)
    assert (bonus.user_id, bonus.cents) == ("bob", 500)
    later = record_conversion(store, clock, ON_PURCHASE, "bob", "purchase", "o-2", 2000)
    assert later.referral is None and not later.conversion.awaits_signup  # earned once


@pytest.mark.parametrize(
    ("program", "event", "value"),
    [
        (ON_PURCHASE, "purchase", 999),
        (ON_PURCHASE, "visit", 5000),
        (RuleVersion(), "purchase", 5000),
    ],
)
def test_only_a_qualifying_early_conversion_waits_for_the_signup(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, event: str, value: int
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    early = record_conversion(store, clock, program, "bob", event, "o-1", value)
    assert not early.conversion.awaits_signup
    referral = sign_up(store, clock, ON_PURCHASE, "bob", "ALICE-1").referral
    assert referral.status is ReferralStatus.AWAITING
