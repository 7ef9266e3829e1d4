"""The dashboard's overview: the figures it gathers from the stats port, on the fake store."""

from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.model import ReferralStatus
from referrals.domain.periods import Period
from referrals.domain.program import Program, RuleVersion, Trigger
from referrals.domain.tiers import TierSchedule
from referrals.services.dashboard_overview import (
    WINDOW_DAYS,
    StateTotal,
    TierTotal,
    TopReferrer,
    overview,
)
from referrals.services.payouts import run_payout
from referrals.services.programs import create_program, ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.reviews import reject
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

# FixedClock: 2026-03-14 12:00 UTC. The window is the 30 days ending today.
FIRST_DAY = date(2026, 2, 13)
PENDING, HELD = ReferralStatus.PENDING, ReferralStatus.HELD


@pytest.fixture
def code(store: MemoryStore, clock: FixedClock) -> str:
    return enroll(store, clock, "alice").referrer.code


def test_an_empty_program_shows_thirty_days_of_nothing(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    empty = overview(store, clock, program.tiers)
    assert [day for day, _ in empty.days] == [
        FIRST_DAY + timedelta(days=n) for n in range(WINDOW_DAYS)
    ]
    assert empty.days[-1][0] == date(2026, 3, 14) and empty.signups == 0
    assert empty.since == datetime(2026, 2, 13, tzinfo=UTC)
    assert (empty.tiers, list(empty.top), list(empty.unsettled)) == ([], [], [])
    assert (empty.paid, empty.paid_runs, empty.unpaid) == ((), 0, ())


def test_signups_per_day_count_the_window_by_when_they_signed_up(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    today, start = clock.now(), datetime(2026, 2, 13, tzinfo=UTC)
    for user, moment in [
        ("u1", None),
        ("u2", None),
        ("u3", start),  # the window's first instant
        ("u4", start - timedelta(microseconds=1)),  # imported: just before it
    ]:
        sign_up(store, clock, program, user, code, signed_up_at=moment)
    days = dict(overview(store, clock, program.tiers).days)
    assert days[today.date()] == 2 and days[FIRST_DAY] == 1
    assert sum(days.values()) == 3


def test_tiers_money_and_leaderboard(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    for n in range(1, 6):  # the fifth referral is in the $15 tier
        sign_up(store, clock, program, f"u{n}", code)
    held = sign_up(store, clock, program, "m", code, email="m@mailinator.com").referral
    rejected = sign_up(store, clock, program, "r", code, email="r@mailinator.com").referral
    reject(store, clock, "admin-key", rejected.id, "fraud")
    bob = enroll(store, clock, "bob").referrer.code
    sign_up(store, clock, program, "b1", bob, signed_up_at=datetime(2026, 1, 10, tzinfo=UTC))
    run = run_payout(store, MemoryReports(), clock, Period.parse("2026-01"))

    seen = overview(store, clock, program.tiers)

    assert seen.signups == 7  # bob's January referral is outside the window
    # The rejected reward earned nothing; the held one may still be paid.
    assert seen.tiers == [
        TierTotal(1000, program.tiers.tiers[0], 4, 4000),
        TierTotal(1500, program.tiers.tiers[1], 2, 3000),
    ]
    assert held.status is HELD
    assert list(seen.unsettled) == [StateTotal(PENDING, 5, 5500), StateTotal(HELD, 1, 1500)]
    assert seen.unpaid == (("USD", 7000),)
    assert (seen.paid, seen.paid_runs) == ((("USD", run.total_cents),), 1)
    assert run.total_cents == 1000
    assert list(seen.top) == [TopReferrer("alice", 7, (("USD", 7000),))]


def test_an_amount_the_schedule_no_longer_pays_has_no_tier(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    sign_up(store, clock, program, "u1", code)
    cheaper = TierSchedule.parse("1:500")
    assert overview(store, clock, cheaper).tiers == [TierTotal(1000, None, 1, 1000)]


def test_an_awaiting_reward_is_listed_but_not_owed(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    on_conversion = RuleVersion(trigger=Trigger.CONVERSION)
    sign_up(store, clock, on_conversion, "bob", code)  # awaiting: 1000 if bob converts
    sign_up(store, clock, RuleVersion(), "carol", code)  # earned: 1000 owed
    shown = overview(store, clock, on_conversion.tiers)
    assert {state.status: state.cents for state in shown.unsettled} == {
        ReferralStatus.AWAITING: 1000,
        PENDING: 1000,
    }
    assert shown.unpaid == (("USD", 1000),)


def test_programs_in_several_currencies_are_summed_per_currency_never_across(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    """Alice refers in the default program (USD, $10 a referral) and in a JPY one (500
    yen a referral); bob in the JPY one only, with more referrals than alice."""
    ensure_default_program(store, clock, program)
    yen = RuleVersion(program_id="japan", tiers=TierSchedule.parse("1:500"))
    create_program(store, clock, "test", Program("japan", "Japan", "JPY"), yen)
    alice_jp = enroll(store, clock, "alice", program="japan").referrer.code
    bob_jp = enroll(store, clock, "bob", program="japan").referrer.code
    sign_up(store, clock, program, "u1", code)
    sign_up(store, clock, program, "u2", code, signed_up_at=datetime(2026, 1, 5, tzinfo=UTC))
    sign_up(store, clock, yen, "u1", alice_jp)
    for n in range(3):
        sign_up(store, clock, yen, f"j{n}", bob_jp)
    run = run_payout(store, MemoryReports(), clock, Period.parse("2026-01"))

    seen = overview(store, clock, program.tiers)

    assert seen.signups == 5
    assert [(t.currency, t.reward_cents, t.count, t.cents) for t in seen.tiers] == [
        ("JPY", 500, 4, 2000),
        ("USD", 1000, 1, 1000),
    ]
    assert list(seen.unsettled) == [
        StateTotal(PENDING, 4, 2000, "JPY"),
        StateTotal(PENDING, 1, 1000, "USD"),
    ]
    assert seen.unpaid == (("JPY", 2000), ("USD", 1000))
    assert run.totals[0].currency == "USD" and seen.paid == (("USD", 1000),)
    assert list(seen.top) == [
        TopReferrer("bob", 3, (("JPY", 1500),)),
        TopReferrer("alice", 2, (("JPY", 500), ("USD", 1000))),
    ]
    japan = overview(store, clock, yen.tiers, program="japan")
    assert japan.unpaid == (("JPY", 2000),)
    assert list(japan.top) == [
        TopReferrer("bob", 3, (("JPY", 1500),)),
        TopReferrer("alice", 1, (("JPY", 500),)),
    ]
