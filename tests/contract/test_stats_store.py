"""The dashboard's aggregates (StatsRepository): the same numbers from every store."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.domain.funnel import ReferralDay
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    ReferrerTally,
    Reward,
    RewardKind,
    RunStatus,
    SignupTally,
    StateTally,
    new_id,
)
from referrals.domain.periods import Period
from referrals.ports import Store
from referrals.services.payouts import run_payout
from tests.clocks import FixedClock
from tests.contract.test_payout_store import assign, claim, seed
from tests.contract.test_store import add_referrer, referral, referrer
from tests.fakes import MemoryReports

# Ids are minted at the real time, after every `created_at` below: as in production,
# where an id is minted at its signup, or later for an import.
NOW = datetime(2026, 11, 25, tzinfo=UTC)
SINCE = datetime(2026, 10, 27, tzinfo=UTC)
PENDING, HELD, AWAITING = ReferralStatus.PENDING, ReferralStatus.HELD, ReferralStatus.AWAITING
REJECTED, PROCESSING, PAID = ReferralStatus.REJECTED, ReferralStatus.PROCESSING, ReferralStatus.PAID


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def ledger(store: Store) -> dict[str, Referral]:
    """Referrals in and out of the window since SINCE, in every state the dashboard
    sums, and two entries besides them."""
    for user in ("alice", "bob", "Zed"):
        add_referrer(store, referrer(user, user.upper()))
    rows = {
        "a1": referral("alice", "a1", 1, created_at=at(24, 10)),
        "a2": referral(
            "alice",
            "a2",
            2,
            created_at=at(25) - timedelta(microseconds=1),
            reward_cents=1500,
            status=HELD,
        ),
        "a3": referral("alice", "a3", 3, created_at=at(20), reward_cents=2000, status=REJECTED),
        "b1": referral("bob", "b1", 1, created_at=at(20, 12)),
        # Imported with an old signed_up_at: a new id, but not in the window.
        "b2": referral("bob", "b2", 2, created_at=at(15, month=1), reward_cents=2500),
        "z1": referral("Zed", "z1", 1, created_at=SINCE - timedelta(microseconds=1)),
        "z2": referral("Zed", "z2", 2, created_at=SINCE, status=AWAITING),
    }
    seed(store, list(rows.values()))
    with store.unit_of_work() as uow:
        for entry in (
            Reward(
                new_id(datetime.now(UTC)),
                rows["a1"].id,
                "a1",
                RewardKind.REFEREE,
                300,
                PENDING,
                at(24, 10),
            ),
            Reward(
                new_id(datetime.now(UTC)),
                rows["b1"].id,
                "bob",
                RewardKind.CLAWBACK,
                -700,
                PENDING,
                at(22),
            ),
        ):
            uow.rewards.add(entry)
        uow.commit()
    return rows


def signups(store: Store, since: datetime = SINCE) -> set[SignupTally]:
    with store.read() as uow:
        return set(uow.stats.signups(since))


def unsettled(store: Store) -> list[StateTally]:
    with store.read() as uow:
        return list(uow.stats.unsettled())


def test_an_empty_store_has_nothing_to_count(store: Store) -> None:
    with store.read() as uow:
        assert list(uow.stats.signups(SINCE)) == []
        assert list(uow.stats.top_referrers(SINCE, 10)) == []
        assert list(uow.stats.unsettled()) == []


@pytest.mark.usefixtures("ledger")
def test_signups_count_by_day_amount_and_state_within_the_window(store: Store) -> None:
    assert signups(store) == {
        SignupTally(date(2026, 11, 24), 1000, PENDING, 1),
        SignupTally(date(2026, 11, 24), 1500, HELD, 1),
        SignupTally(date(2026, 11, 20), 2000, REJECTED, 1),
        SignupTally(date(2026, 11, 20), 1000, PENDING, 1),
        SignupTally(date(2026, 10, 27), 1000, AWAITING, 1),  # exactly at the start
    }


@pytest.mark.usefixtures("ledger")
def test_a_narrower_window_counts_only_its_days(store: Store) -> None:
    assert signups(store, at(24, 11)) == {SignupTally(date(2026, 11, 24), 1500, HELD, 1)}


@pytest.mark.usefixtures("ledger")
def test_top_referrers_rank_by_referrals_then_id_bytes_and_sum_what_was_earned(
    store: Store,
) -> None:
    with store.read() as uow:
        top = list(uow.stats.top_referrers(SINCE, 10))
        first_two = list(uow.stats.top_referrers(SINCE, 2))
    # alice's rejected reward earned nothing, nor did Zed's awaiting one; "Zed" sorts
    # before "bob" by bytes (a locale would put it after).
    assert top == [
        ReferrerTally("alice", 3, 2500),
        ReferrerTally("Zed", 1, 0),
        ReferrerTally("bob", 1, 1000),
    ]
    assert first_two == top[:2]


@pytest.mark.usefixtures("ledger")
def test_unsettled_money_by_state_counts_referrals_and_entries(store: Store) -> None:
    # pending: a1, b1, b2, z1 (4000) plus the referee's 300, less the clawback's 700.
    assert unsettled(store) == [
        StateTally(AWAITING, 1, 1000),
        StateTally(PENDING, 6, 5100),
        StateTally(HELD, 1, 1500),
    ]


@pytest.mark.usefixtures("ledger")
def test_rewards_assigned_to_a_run_count_as_processing(store: Store) -> None:
    assert claim(store, "one")
    assign(store, 100)  # October's run: b2 and z1 were payable before its cutoff
    assert unsettled(store) == [
        StateTally(AWAITING, 1, 1000),
        StateTally(PENDING, 4, 1600),
        StateTally(HELD, 1, 1500),
        StateTally(PROCESSING, 2, 3500),
    ]


def test_a_completed_run_takes_its_rewards_out_of_the_unsettled_money(
    store: Store, ledger: dict[str, Referral]
) -> None:
    run = run_payout(store, MemoryReports(), FixedClock(NOW), Period.parse("2026-10"))
    assert run.status is RunStatus.COMPLETED and run.total_cents == 3500
    assert unsettled(store) == [
        StateTally(AWAITING, 1, 1000),
        StateTally(PENDING, 4, 1600),
        StateTally(HELD, 1, 1500),
    ]
    # Neither paid reward was created in the window: its days are unchanged.
    assert SignupTally(date(2026, 11, 20), 1000, PENDING, 1) in signups(store)
    assert not any(t.status is PAID for t in signups(store))
    with store.read() as uow:
        assert uow.referrals.get(ledger["b2"].id).status is PAID  # type: ignore[union-attr]


def test_a_programs_figures_count_only_its_own_records(
    store: Store, ledger: dict[str, Referral]
) -> None:
    """Alice refers in `partners` too: her referral and entry there count in its figures,
    and in every program's, never in the default program's."""
    add_referrer(store, replace(referrer("alice", "ALICE-P"), program_id="partners"))
    partner = referral(
        "alice", "p1", 1, created_at=at(23), reward_cents=4000, program_id="partners"
    )
    seed(store, [partner])
    with store.unit_of_work() as uow:
        uow.rewards.add(
            Reward(
                new_id(datetime.now(UTC)),
                partner.id,
                "p1",
                RewardKind.REFEREE,
                500,
                PENDING,
                at(23),
                program_id="partners",
            )
        )
        uow.commit()
    with store.read() as uow:
        assert set(uow.stats.signups(SINCE, program="partners")) == {
            SignupTally(date(2026, 11, 23), 4000, PENDING, 1)
        }
        assert SignupTally(date(2026, 11, 23), 4000, PENDING, 1) in set(uow.stats.signups(SINCE))
        assert not any(t.reward_cents == 4000 for t in uow.stats.signups(SINCE, program="default"))
        assert list(uow.stats.top_referrers(SINCE, 10, program="partners")) == [
            ReferrerTally("alice", 1, 4000)
        ]
        assert list(uow.stats.top_referrers(SINCE, 1, program="default")) == [
            ReferrerTally("alice", 3, 2500)
        ]
        assert list(uow.stats.unsettled(program="partners")) == [StateTally(PENDING, 2, 4500)]
        assert list(uow.stats.unsettled(program="default")) == [
            StateTally(AWAITING, 1, 1000),
            StateTally(PENDING, 6, 5100),
            StateTally(HELD, 1, 1500),
        ]


def test_a_programs_referral_days_count_signups_and_earnings_per_day_and_referrer(
    store: Store, ledger: dict[str, Referral]
) -> None:
    """The funnel's referral stage: [since, until) of one program, by UTC day of the
    signup and referrer; rejected and awaiting rewards earn nothing."""
    add_referrer(store, replace(referrer("alice", "ALICE-P"), program_id="partners"))
    seed(
        store,
        [referral("alice", "p1", 1, created_at=at(23), reward_cents=4000, program_id="partners")],
    )
    with store.read() as uow:
        days = set(uow.stats.referral_days("default", SINCE, at(24, 10)))
        partners = set(uow.stats.referral_days("partners", SINCE, NOW))
    assert days == {
        ReferralDay(date(2026, 11, 20), "alice", 1, 0),  # a3, rejected
        ReferralDay(date(2026, 11, 20), "bob", 1, 1000),
        ReferralDay(date(2026, 10, 27), "Zed", 1, 0),  # z2, awaiting a conversion
    }  # a1 (at 10:00 on the 24th) is at the window's end: left out
    assert partners == {ReferralDay(date(2026, 11, 23), "alice", 1, 4000)}
