"""Revenue shares through payout runs: paid once, refunds after payment clawed back, and
the money property: whatever the sales, refunds, reversals of referrals and runs, a
referrer earns exactly the shares of the revenue kept by the referrals still standing,
and no entry is paid twice."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referrals.adapters.memory import MemoryStore
from referrals.domain.model import LineKind, ReferralStatus, RewardKind
from referrals.domain.periods import Period, last_ended_period
from referrals.domain.program import RuleVersion
from referrals.domain.sales import SaleKind, ShareTier, ShareTiers, share_of
from referrals.domain.tiers import Tier, TierSchedule
from referrals.services import payouts, reviews
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.sales import RefundIn, SaleIn, record_refund, record_sale
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

START = datetime(2026, 1, 10, tzinfo=UTC)
# No reward for the signup itself, so what a referrer earns is their shares alone.
SHARES_ONLY = RuleVersion(
    tiers=TierSchedule((Tier(1, 0),)),
    share_tiers=ShareTiers((ShareTier(1, 1000), ShareTier(2, 2500))),
)
REFEREES = {"ann-1": "ann", "ann-2": "ann", "ben-1": "ben"}  # ann: 25 %, ben: 10 %
BPS = {"ann": 2500, "ben": 1000}


def setup(store: MemoryStore, clock: FixedClock, rules: RuleVersion = SHARES_ONLY) -> None:
    ensure_default_program(store, clock, rules)
    codes = {user: enroll(store, clock, user).referrer.code for user in BPS}
    for referee, referrer in REFEREES.items():
        sign_up(store, clock, rules, referee, codes[referrer])


def sale(external_id: str, user: str, amount: int, at: datetime) -> SaleIn:
    return SaleIn(external_id, user, amount, "USD", at, SaleKind.PURCHASE)


def lines(store: MemoryStore, period: Period) -> list[tuple[str, int, LineKind]]:
    """The run's lines that pay something (the referrals' own rewards are zero here)."""
    with store.read() as uow:
        found = uow.payouts.lines(str(period))
        return [(x.referrer_id, x.amount_cents, x.kind) for x in found if x.amount_cents]


def test_a_share_is_paid_once_and_a_refund_after_payment_is_a_clawback_line() -> None:
    store, clock, reports = MemoryStore(), FixedClock(START), MemoryReports()
    setup(store, clock)
    record_sale(store, clock, sale("in_1", "ben-1", 10_000, START))
    clock.moment = datetime(2026, 2, 2, tzinfo=UTC)
    january = Period(2026, 1)
    payouts.run_payout(store, reports, clock, january)
    assert lines(store, january) == [("ben", 1000, LineKind.REWARD)]
    payouts.run_payout(store, reports, clock, january)  # a completed period is a no-op
    assert lines(store, january) == [("ben", 1000, LineKind.REWARD)]

    outcome = record_refund(store, clock, RefundIn("in_1", 2501, external_id="re_1"))
    clawback = outcome.clawback
    assert clawback is not None and outcome.refund.reversed_minor == 251  # 1000 - 749
    assert (clawback.kind, clawback.cents, clawback.sale_id) == (RewardKind.CLAWBACK, -251, "in_1")
    share = store.state.rewards[outcome.sale.reward_id or ""]
    assert (share.status, share.cents) == (ReferralStatus.PAID, 1000)  # paid stays paid

    # The clawback is netted against ben's next share in the next run.
    record_sale(store, clock, sale("in_2", "ben-1", 5000, clock.now()))
    clock.moment = datetime(2026, 3, 2, tzinfo=UTC)
    payouts.run_payout(store, reports, clock, Period(2026, 2))
    assert lines(store, Period(2026, 2)) == [
        ("ben", 500, LineKind.REWARD),
        ("ben", -251, LineKind.CLAWBACK),
    ]
    with store.read() as uow:
        assert uow.referrers.earnings("ben", clock.now()).earned_cents == 749 + 500


@dataclass(frozen=True)
class Sell:
    user: str
    amount: int
    days: int  # after the step before


@dataclass(frozen=True)
class Refund:
    sale: int  # an index into the sales made so far (modulo their number)
    part: int  # of 4: the share of what is left refunded (4: all of it)
    days: int


@dataclass(frozen=True)
class Pay:
    days: int


@dataclass(frozen=True)
class Reverse:
    referee: str  # whose referral is reversed (a refunded account): its shares go with it
    days: int


DAYS = st.integers(0, 20)
STEPS = st.lists(
    st.one_of(
        st.builds(Sell, st.sampled_from(sorted(REFEREES)), st.integers(0, 50_000), DAYS),
        st.builds(Refund, st.integers(0, 100), st.integers(1, 4), DAYS),
        st.builds(Pay, DAYS),
        st.builds(Reverse, st.sampled_from(sorted(REFEREES)), DAYS),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, ceiling=st.sampled_from([0, 3000]))
def test_each_referrer_earns_the_shares_of_the_revenue_kept_and_nothing_twice(
    steps: list[Sell | Refund | Pay | Reverse], ceiling: int
) -> None:
    store, clock, reports = MemoryStore(), FixedClock(START), MemoryReports()
    rules = RuleVersion(
        tiers=SHARES_ONLY.tiers,
        share_tiers=SHARES_ONLY.share_tiers,
        share_ceiling_cents=ceiling,
    )
    setup(store, clock, rules)
    sold: list[tuple[str, str, int, str]] = []  # (external id, referrer, amount, referee)
    reversed_referees: set[str] = set()
    refunded: dict[str, int] = defaultdict(int)
    paid: set[Period] = set()
    for n, step in enumerate(steps):
        clock.advance(days=step.days)
        if isinstance(step, Sell):
            record_sale(store, clock, sale(f"in_{n}", step.user, step.amount, clock.now()))
            sold.append((f"in_{n}", REFEREES[step.user], step.amount, step.user))
        elif isinstance(step, Refund) and sold:
            external_id, _, amount, _ = sold[step.sale % len(sold)]
            left = amount - refunded[external_id]
            part = left * step.part // 4
            if part:
                record_refund(store, clock, RefundIn(external_id, part))
                refunded[external_id] += part
        elif isinstance(step, Reverse) and step.referee not in reversed_referees:
            with store.read() as uow:
                referral = uow.referrals.by_referee(step.referee)
            assert referral is not None
            reviews.reverse(store, clock, "admin", referral.id, "a refunded account")
            reversed_referees.add(step.referee)
        elif isinstance(step, Pay):
            period = last_ended_period(clock.now())
            if period not in paid:
                payouts.run_payout(store, reports, clock, period)
                paid.add(period)

    expected: dict[str, int] = defaultdict(int)
    for external_id, referrer, amount, referee in sold:
        if referee not in reversed_referees:
            expected[referrer] += share_of(amount - refunded[external_id], BPS[referrer], ceiling)
    with store.read() as uow:
        for referrer in BPS:
            earned = uow.referrers.earnings(referrer, clock.now()).earned_cents
            assert earned == expected[referrer], referrer
    # Every entry is in at most one run, and the runs' lines add up to what they paid.
    by_lines: dict[str, int] = defaultdict(int)
    for period in paid:
        for user, amount, _ in lines(store, period):
            by_lines[user] += amount
    by_entries: dict[str, int] = defaultdict(int)
    for entry in store.state.rewards.values():
        if entry.payout_period is not None:
            assert Period.parse(entry.payout_period) in paid
            by_entries[entry.user_id] += entry.cents
    assert by_lines == {
        user: cents for user, cents in by_entries.items() if cents or user in by_lines
    }
