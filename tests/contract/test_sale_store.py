"""Sales, refunds and revenue-share entries, on every store."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import Receipt, ReferralStatus, Reward, RewardKind, new_id
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.domain.sales import Refund, Sale, SaleKind, SaleTally, ShareTier, ShareTiers
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Store
from referrals.services import reviews
from referrals.services.payouts import run_payout
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.sales import RefundIn, SaleIn, record_refund, record_sale
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.contract.test_payout_store import CUTOFF, assign, claim, seed
from tests.contract.test_store import add_referrer, referral, referrer
from tests.fakes import MemoryReports

DAY = datetime(2026, 10, 5, 9, tzinfo=UTC)
RECEIPT = Receipt(rule="share:purchase", tier_threshold=1, tier_cents=1000, rule_version=2)


def sale(external_id: str = "in_1", **changes: object) -> Sale:
    base = Sale(
        external_id,
        "bob",
        10_000,
        "USD",
        DAY,
        SaleKind.PURCHASE,
        DAY + timedelta(seconds=1),
        referral_id=None,
        referrer_id="alice",
        share_bps=1000,
        share_ceiling_minor=5000,
        awarded_minor=1000,
        receipt=RECEIPT,
    )
    return replace(base, **changes)


_minted = iter(range(10**6))


def refund(amount: int, external_id: str | None = None, **changes: object) -> Refund:
    base = Refund(
        new_id(DAY + timedelta(milliseconds=next(_minted))),  # ids in the order made
        "in_1",
        amount,
        DAY + timedelta(days=1),
        DAY + timedelta(days=1),
        referrer_id="alice",
        external_id=external_id,
        reversed_minor=amount // 10,
    )
    return replace(base, **changes)


def add(store: Store, *sales: Sale) -> None:
    with store.unit_of_work() as uow:
        for s in sales:
            uow.sales.add(s)
        uow.commit()


def get(store: Store, external_id: str = "in_1") -> Sale:
    with store.read() as uow:
        found = uow.sales.get(external_id)
    assert found is not None
    return found


def add_refund(store: Store, r: Refund, seen: Sale) -> None:
    with store.unit_of_work() as uow:
        uow.sales.add_refund(r, seen)
        uow.commit()


def share(store: Store, cents: int = 1000) -> Reward:
    """A share entry of a referral of alice's, with its sale."""
    add_referrer(store, referrer("alice", "ALICE"))
    r = referral("alice", "bob", 1)
    seed(store, [r])
    entry = Reward(
        new_id(datetime.now(UTC)),
        r.id,
        "alice",
        RewardKind.SHARE,
        cents,
        ReferralStatus.PENDING,
        DAY,
        sale_id="in_1",
    )
    with store.unit_of_work() as uow:
        uow.rewards.add(entry)
        uow.sales.add(sale(referral_id=r.id, reward_id=entry.id))
        uow.commit()
    return entry


def test_a_sale_round_trips_exactly(store: Store) -> None:
    s = sale()
    unattributed = sale("in_2", referrer_id=None, receipt=None, awarded_minor=0, share_bps=0)
    add(store, s, unattributed)
    assert get(store) == s and get(store, "in_2") == unattributed
    with store.read() as uow:
        assert uow.sales.get("in_3") is None


def test_a_second_sale_under_one_external_id_conflicts(store: Store) -> None:
    add(store, sale())
    with pytest.raises(Conflict):
        add(store, sale(amount_minor=1))
    assert get(store).amount_minor == 10_000


def test_refunds_add_up_on_their_sale_and_list_in_order(store: Store) -> None:
    add(store, sale())
    first, second = refund(1000, "re_1"), refund(250)
    add_refund(store, first, get(store))
    add_refund(store, second, get(store))
    assert get(store).refunded_minor == 1250
    with store.read() as uow:
        assert list(uow.sales.refunds("in_1")) == [first, second]
        assert uow.sales.refund("re_1") == first
        assert uow.sales.refund("re_2") is None
        assert list(uow.sales.refunds("in_2")) == []


def test_a_refund_against_a_stale_total_conflicts(store: Store) -> None:
    add(store, sale())
    seen = get(store)
    add_refund(store, refund(1000), seen)
    with pytest.raises(Conflict):
        add_refund(store, refund(9000), seen)  # read before the first refund
    assert get(store).refunded_minor == 1000
    with store.read() as uow:
        assert len(uow.sales.refunds("in_1")) == 1


def test_a_refund_external_id_is_recorded_once(store: Store) -> None:
    add(store, sale())
    add_refund(store, refund(1000, "re_1"), get(store))
    with pytest.raises(Conflict):
        add_refund(store, refund(1000, "re_1"), get(store))
    assert get(store).refunded_minor == 1000


def test_concurrent_refunds_of_one_sale_both_land_exactly_once(store: Store) -> None:
    add(store, sale())

    def attempt(n: int) -> None:
        for _ in range(50):
            try:
                add_refund(store, refund(100 + n, f"re_{n}"), get(store))
                return
            except Conflict:
                continue
        raise AssertionError("never committed")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(attempt, range(4)))
    assert get(store).refunded_minor == sum(100 + n for n in range(4))


def test_a_share_entry_keeps_its_sale(store: Store) -> None:
    entry = share(store)
    with store.read() as uow:
        assert uow.rewards.get(entry.id) == entry
        assert get(store).reward_id == entry.id


def test_reprice_lowers_an_unpaid_share_conditionally(store: Store) -> None:
    entry = share(store)
    with store.unit_of_work() as uow:
        lowered = uow.sales.reprice_share(entry, 700, ReferralStatus.PENDING, "refunded")
        uow.commit()
    assert lowered is not None and (lowered.cents, lowered.note) == (700, "refunded")
    with store.read() as uow:
        assert uow.rewards.get(entry.id) == lowered
    with pytest.raises(Conflict), store.unit_of_work() as uow:  # the amount read is stale
        if uow.sales.reprice_share(entry, 500, ReferralStatus.PENDING, None) is None:
            raise Conflict("changed")
        uow.commit()
    with store.read() as uow:
        found = uow.rewards.get(entry.id)
    assert found is not None and found.cents == 700


def test_a_repriced_share_is_paid_at_its_new_amount(store: Store) -> None:
    entry = share(store)
    with store.unit_of_work() as uow:
        uow.sales.reprice_share(entry, 300, ReferralStatus.PENDING, "refunded")
        uow.commit()
    assert claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        lines = list(uow.payouts.lines("2026-10"))
    assert [(line.referrer_id, line.amount_cents) for line in lines] == [("alice", 1000 + 300)]


def test_a_share_reversed_in_full_is_never_paid(store: Store) -> None:
    entry = share(store)
    with store.unit_of_work() as uow:
        uow.sales.reprice_share(entry, 0, ReferralStatus.REVERSED, "refunded")
        uow.commit()
    assert claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        found = uow.rewards.get(entry.id)
        lines = list(uow.payouts.lines("2026-10"))
    assert found is not None and found.status is ReferralStatus.REVERSED
    assert [line.amount_cents for line in lines] == [1000]  # the referral's own reward


def test_a_share_assigned_to_a_run_is_not_repriced(store: Store) -> None:
    entry = share(store)
    assert claim(store, "one") and entry.payable_at < CUTOFF
    assign(store, 10)
    with store.unit_of_work() as uow:
        try:
            lowered = uow.sales.reprice_share(entry, 1, ReferralStatus.PENDING, None)
            uow.commit()
        except Conflict:
            lowered = None
    assert lowered is None
    with store.read() as uow:
        found = uow.rewards.get(entry.id)
    assert found is not None and (found.status, found.cents) == (ReferralStatus.PROCESSING, 1000)


def test_the_tally_sums_a_window_per_day_and_referrer(store: Store) -> None:
    add(
        store,
        sale("in_1"),
        sale("in_2", amount_minor=500, occurred_at=DAY + timedelta(hours=1)),
        sale("in_3", amount_minor=70, referrer_id=None, awarded_minor=0, kind=SaleKind.RENEWAL),
        sale("in_4", occurred_at=DAY + timedelta(days=1)),
        sale("in_5", occurred_at=DAY - timedelta(microseconds=1)),  # before the window
        sale("in_6", occurred_at=DAY + timedelta(days=2)),  # at its end: outside
        sale("in_7", program_id="other"),
    )
    add_refund(store, refund(300), get(store))
    window = list(replace_window(store, DAY, DAY + timedelta(days=2)))
    assert window == [
        SaleTally(date(2026, 10, 5), None, 1, 70),
        SaleTally(date(2026, 10, 5), "alice", 2, 10_500, purchases=2, share_minor=2000),
        SaleTally(date(2026, 10, 6), "alice", 1, 10_000, 1, 300, purchases=1, share_minor=970),
    ]


def replace_window(store: Store, since: datetime, until: datetime) -> list[SaleTally]:
    with store.read() as uow:
        return list(uow.sales.tally("default", since, until))


def test_sales_and_refunds_through_the_use_cases_settle_exactly(store: Store) -> None:
    """The use cases' units of work on each store: a share earned, lowered in place,
    paid by a run, then clawed back by a refund after payment (each store's transaction
    writes every item once)."""
    clock = FixedClock(DAY)
    rules = RuleVersion(
        tiers=TierSchedule((Tier(1, 0),)), share_tiers=ShareTiers((ShareTier(1, 1000),))
    )
    ensure_default_program(store, clock, rules)
    code = enroll(store, clock, "alice").referrer.code
    sign_up(store, clock, rules, "bob", code)
    at = clock.now()
    earned = record_sale(store, clock, SaleIn("in_1", "bob", 10_000, "USD", at))
    assert earned.reward is not None and earned.reward.cents == 1000
    again = record_sale(store, clock, SaleIn("in_1", "bob", 10_000, "USD", at))
    assert again.replayed and again.reward == earned.reward
    lowered = record_refund(store, clock, RefundIn("in_1", 1000, external_id="re_1"))
    assert (lowered.refund.reversed_minor, lowered.clawback) == (100, None)
    clock.moment = CUTOFF + timedelta(days=1)
    run_payout(store, MemoryReports(), clock, Period(2026, 10))
    taken = record_refund(store, clock, RefundIn("in_1", 9000, external_id="re_2"))
    assert taken.clawback is not None and taken.clawback.cents == -900
    with store.read() as uow:
        share = uow.rewards.get(earned.reward.id)
        assert share is not None and (share.status, share.cents) == (ReferralStatus.PAID, 900)
        assert uow.referrers.earnings("alice", clock.now()).earned_cents == 0
        assert [r.external_id for r in uow.sales.refunds("in_1")] == ["re_1", "re_2"]
        assert uow.sales.get("in_1") == replace(lowered.sale, refunded_minor=10_000)


def test_reversing_a_referral_settles_its_shares_in_one_unit_of_work(store: Store) -> None:
    """The review use case on each store: the referral's reward, its paid share (clawed
    back) and its unpaid one (reversed), and the caps given back for all three in the one
    write of the referrer's profile a DynamoDB transaction allows."""
    clock = FixedClock(DAY)
    rules = RuleVersion(share_tiers=ShareTiers((ShareTier(1, 1000),)))
    ensure_default_program(store, clock, rules)
    code = enroll(store, clock, "alice").referrer.code
    referral = sign_up(store, clock, rules, "bob", code).referral
    at = clock.now()
    record_sale(store, clock, SaleIn("in_1", "bob", 10_000, "USD", at))
    clock.moment = CUTOFF + timedelta(days=1)
    run_payout(store, MemoryReports(), clock, Period(2026, 10))  # pays $10 and the $10 share
    record_sale(store, clock, SaleIn("in_2", "bob", 5_000, "USD", clock.now()))
    reviews.reverse(store, clock, "admin", referral.id, "a refunded account")
    with store.read() as uow:
        entries = uow.rewards.for_referral(referral.id)
        states = sorted((e.kind, e.status, e.cents) for e in entries)
        profile = uow.referrers.get("alice")
    assert states == sorted(
        [
            (RewardKind.SHARE, ReferralStatus.CLAWED_BACK, 1000),
            (RewardKind.SHARE, ReferralStatus.REVERSED, 500),
            (RewardKind.CLAWBACK, ReferralStatus.PENDING, -1000),  # the referral's reward
            (RewardKind.CLAWBACK, ReferralStatus.PENDING, -1000),  # the paid share
        ]
    )
    assert profile is not None and profile.cap_lifetime_cents == 0
