from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import (
    CurrencyMismatch,
    InvalidInput,
    NotHeld,
    RefundConflict,
    RefundExceedsSale,
    SaleConflict,
    SaleNotFound,
)
from referrals.domain.model import ReferralStatus, RewardKind
from referrals.domain.program import RuleVersion
from referrals.domain.sales import SaleKind, ShareTier, ShareTiers
from referrals.services import reviews
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.sales import (
    RefundIn,
    SaleIn,
    hold_sale,
    record_refund,
    record_sale,
    review_share,
)
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

TEN_PERCENT = RuleVersion(share_tiers=ShareTiers((ShareTier(1, 1000), ShareTier(3, 2000))))


def setup(store: MemoryStore, clock: FixedClock, rules: RuleVersion = TEN_PERCENT) -> None:
    ensure_default_program(store, clock, rules)
    code = enroll(store, clock, "alice", code="ALICE-1").referrer.code
    sign_up(store, clock, rules, "bob", code)
    clock.advance(hours=1)


def sale(external_id: str = "in_1", amount: int = 10_000, **changes: object) -> SaleIn:
    at = datetime(2026, 3, 14, 12, 30, tzinfo=UTC)
    return replace(SaleIn(external_id, "bob", amount, "USD", at, SaleKind.PURCHASE), **changes)


def earned(store: MemoryStore, clock: FixedClock) -> int:
    with store.read() as uow:
        return uow.referrers.earnings("alice", clock.now()).earned_cents


def test_a_sale_of_a_referred_user_pays_its_referrer_the_tier_share(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    outcome = record_sale(store, clock, sale(amount=12_345))
    reward = outcome.reward
    assert reward is not None and not outcome.replayed
    assert (reward.kind, reward.user_id, reward.cents, reward.status) == (
        RewardKind.SHARE,
        "alice",
        1234,  # 10 % of 123.45, rounded down
        ReferralStatus.PENDING,
    )
    assert reward.sale_id == "in_1" and outcome.sale.referrer_id == "alice"
    receipt = outcome.sale.receipt
    assert receipt is not None
    assert (receipt.rule, receipt.tier_threshold, receipt.program, receipt.rule_version) == (
        "share:purchase",
        1,
        "default",
        1,
    )
    with store.read() as uow:
        profile = uow.referrers.get("alice")
    assert profile is not None and profile.cap_lifetime_cents == 1000 + 1234
    assert earned(store, clock) == 1000 + 1234


def test_the_same_sale_again_is_a_replay_and_another_body_a_conflict(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    first = record_sale(store, clock, sale())
    again = record_sale(store, clock, sale())
    assert again.replayed and again.sale == first.sale and again.reward == first.reward
    with pytest.raises(SaleConflict):
        record_sale(store, clock, sale(amount=10_001))
    assert len(store.state.sales) == 1 and earned(store, clock) == 1000 + 1000


def test_a_sale_of_a_user_nobody_referred_is_kept_unattributed(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    outcome = record_sale(store, clock, sale(user_id="stranger"))
    assert outcome.reward is None and outcome.sale.referral_id is None
    assert store.state.sales["in_1"].referrer_id is None


def test_a_sale_in_another_currency_is_refused_and_writes_nothing(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    with pytest.raises(CurrencyMismatch) as raised:
        record_sale(store, clock, sale(currency="EUR"))
    assert raised.value.code == "currency_mismatch" and raised.value.field == "currency"
    assert store.state.sales == {}


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": -1},
        {"amount_minor": 10**13},
        {"currency": "usd"},
        {"currency": "XXXX"},
        {"external_id": ""},
        {"user_id": "bad user"},
        {"occurred_at": datetime(2026, 3, 14, 12)},  # no time zone
        {"occurred_at": datetime(2026, 3, 15, tzinfo=UTC)},  # in the future
    ],
)
def test_malformed_sales_are_refused(
    store: MemoryStore, clock: FixedClock, changes: dict[str, object]
) -> None:
    setup(store, clock)
    with pytest.raises(InvalidInput):
        record_sale(store, clock, sale(**changes))
    assert store.state.sales == {}


def test_no_share_rules_means_no_share(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock, RuleVersion())
    outcome = record_sale(store, clock, sale())
    assert outcome.reward is None and outcome.sale.referrer_id == "alice"


def test_a_sale_after_the_share_months_earns_nothing(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock, replace(TEN_PERCENT, share_months=1))
    clock.advance(days=40)
    late = record_sale(store, clock, sale(occurred_at=clock.now()))
    assert late.reward is None and late.sale.referrer_id == "alice"


def test_the_ceiling_and_the_caps_cut_the_share(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock, replace(TEN_PERCENT, share_ceiling_cents=700, lifetime_cap_cents=1500))
    first = record_sale(store, clock, sale("in_1"))
    second = record_sale(store, clock, sale("in_2"))
    assert first.reward is not None and first.reward.cents == 500  # the cap: 1500 - 1000
    assert first.sale.receipt is not None and first.sale.receipt.tier_cents == 700
    assert first.sale.receipt.cap == "lifetime"
    assert second.reward is None and second.sale.awarded_minor == 0


def test_a_partial_refund_lowers_the_unpaid_share_in_place(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    record_sale(store, clock, sale(amount=999))  # share 99
    outcome = record_refund(store, clock, RefundIn("in_1", 1, external_id="re_1"))
    assert outcome.refund.reversed_minor == 0  # 998 still shares 99
    outcome = record_refund(store, clock, RefundIn("in_1", 9, external_id="re_2"))
    assert outcome.refund.reversed_minor == 1 and outcome.clawback is None
    reward_id = outcome.sale.reward_id
    assert reward_id is not None and store.state.rewards[reward_id].cents == 98
    assert earned(store, clock) == 1000 + 98


def test_a_full_refund_reverses_the_unpaid_share(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock)
    record_sale(store, clock, sale())
    outcome = record_refund(store, clock, RefundIn("in_1", 10_000))
    reward = store.state.rewards[outcome.sale.reward_id or ""]
    assert (reward.status, reward.cents) == (ReferralStatus.REVERSED, 0)
    assert earned(store, clock) == 1000
    with store.read() as uow:
        profile = uow.referrers.get("alice")
    assert profile is not None and profile.cap_lifetime_cents == 1000


def test_refunds_never_add_up_to_more_than_the_sale(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock)
    record_sale(store, clock, sale())
    record_refund(store, clock, RefundIn("in_1", 6000))
    with pytest.raises(RefundExceedsSale):
        record_refund(store, clock, RefundIn("in_1", 4001))
    assert store.state.sales["in_1"].refunded_minor == 6000


def test_a_refund_of_an_unknown_sale_is_not_found(store: MemoryStore, clock: FixedClock) -> None:
    with pytest.raises(SaleNotFound):
        record_refund(store, clock, RefundIn("nope", 1))


def test_a_refund_again_is_a_replay_and_another_body_a_conflict(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    record_sale(store, clock, sale())
    first = record_refund(store, clock, RefundIn("in_1", 500, external_id="re_1"))
    again = record_refund(store, clock, RefundIn("in_1", 500, external_id="re_1"))
    assert again.replayed and again.refund == first.refund
    with pytest.raises(RefundConflict):
        record_refund(store, clock, RefundIn("in_1", 501, external_id="re_1"))
    assert store.state.sales["in_1"].refunded_minor == 500


def test_a_dispute_holds_the_unpaid_share_until_reviewed(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    record_sale(store, clock, sale())
    held = hold_sale(store, clock, "in_1", "charge.dispute.created")
    assert held.held and held.reward is not None and held.reward.status is ReferralStatus.HELD
    assert hold_sale(store, clock, "in_1", "again").held  # idempotent
    rejected = review_share(store, clock, "admin", "in_1", approve=False, reason="lost")
    assert rejected.status is ReferralStatus.REJECTED
    assert earned(store, clock) == 1000
    with pytest.raises(NotHeld):
        review_share(store, clock, "admin", "in_1", approve=True, reason="too late")


def test_a_held_referral_holds_its_shares(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock)
    referral = next(iter(store.state.referrals.values()))
    with store.unit_of_work() as uow:
        uow.referrals.transition(referral.id, {referral.status}, ReferralStatus.HELD, "check")
        uow.commit()
    outcome = record_sale(store, clock, sale())
    assert outcome.reward is not None and outcome.reward.status is ReferralStatus.HELD


def cap_lifetime(store: MemoryStore) -> int:
    with store.read() as uow:
        profile = uow.referrers.get("alice")
    assert profile is not None
    return profile.cap_lifetime_cents


@pytest.mark.parametrize("approve", [True, False])
def test_a_held_referrals_shares_are_decided_with_it(
    store: MemoryStore, clock: FixedClock, approve: bool
) -> None:
    setup(store, clock)
    referral = next(iter(store.state.referrals.values()))
    with store.unit_of_work() as uow:
        uow.referrals.transition(referral.id, {referral.status}, ReferralStatus.HELD, "check")
        uow.commit()
    share = record_sale(store, clock, sale()).reward
    assert share is not None and share.status is ReferralStatus.HELD
    counted = cap_lifetime(store)
    if approve:
        reviews.approve(store, clock, "admin", referral.id)
    else:
        reviews.reject(store, clock, "admin", referral.id, "a fake account")
    with store.read() as uow:
        decided = uow.rewards.get(share.id)
    assert decided is not None
    assert decided.status is (ReferralStatus.PENDING if approve else ReferralStatus.REJECTED)
    # Rejected, the referral's reward and its share no longer count toward the caps.
    assert cap_lifetime(store) == (counted if approve else counted - 1000 - share.cents)


def test_reversing_a_referral_reverses_its_unpaid_shares_and_claws_back_paid_ones(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    referral = next(iter(store.state.referrals.values()))
    paid = record_sale(store, clock, sale("in_1")).reward
    unpaid = record_sale(store, clock, sale("in_2", amount=5_000)).reward
    assert paid is not None and unpaid is not None
    with store.unit_of_work() as uow:
        uow.rewards.transition(paid.id, {ReferralStatus.PENDING}, ReferralStatus.PAID, None)
        uow.commit()
    counted = cap_lifetime(store)
    reviews.reverse(store, clock, "admin", referral.id, "refunded in full elsewhere")
    with store.read() as uow:
        states = {e.id: e.status for e in uow.rewards.for_referral(referral.id)}
        clawbacks = [
            e.cents for e in uow.rewards.for_referral(referral.id) if e.kind is RewardKind.CLAWBACK
        ]
    assert states[paid.id] is ReferralStatus.CLAWED_BACK
    assert states[unpaid.id] is ReferralStatus.REVERSED
    assert clawbacks == [-paid.cents]
    assert cap_lifetime(store) == counted - 1000 - paid.cents - unpaid.cents
    # A refund of a reversed share takes nothing more back.
    refund = record_refund(store, clock, RefundIn("in_2", 5_000))
    assert refund.refund.reversed_minor == 0 and refund.clawback is None


def test_a_reversed_referral_earns_no_share(store: MemoryStore, clock: FixedClock) -> None:
    setup(store, clock)
    referral = next(iter(store.state.referrals.values()))
    reviews.reverse(store, clock, "admin", referral.id, "fraud")
    outcome = record_sale(store, clock, sale())
    assert outcome.reward is None and outcome.sale.referrer_id == "alice"


def test_the_share_is_priced_by_the_version_in_force_when_the_sale_occurred(
    store: MemoryStore, clock: FixedClock
) -> None:
    setup(store, clock)
    later = replace(TEN_PERCENT, share_tiers=ShareTiers((ShareTier(1, 5000),)))
    with store.unit_of_work() as uow:
        uow.programs.add_version(
            replace(later, version=2, effective_from=clock.now() + timedelta(days=1))
        )
        uow.commit()
    clock.advance(days=2)
    old = record_sale(store, clock, sale("in_old", occurred_at=clock.now() - timedelta(days=2)))
    new = record_sale(store, clock, sale("in_new", occurred_at=clock.now()))
    assert old.reward is not None and old.reward.cents == 1000
    assert new.reward is not None and new.reward.cents == 5000
    assert new.sale.receipt is not None and new.sale.receipt.rule_version == 2
