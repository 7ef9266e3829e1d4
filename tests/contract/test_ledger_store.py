"""Entries besides a referral's own reward (referee rewards, clawbacks), carry-forward,
conversions and the earnings split, on every store."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import (
    Conversion,
    Earnings,
    LineKind,
    Minimums,
    PayoutLine,
    Receipt,
    Referral,
    ReferralStatus,
    Reward,
    RewardKind,
    RunStatus,
    SignupSlot,
    new_id,
)
from referrals.ports import Store
from tests.contract.test_payout_store import CUTOFF, LEASE, NOW, assign, claim, seed
from tests.contract.test_store import T0, add_referrer, referral, referrer

PENDING, PROCESSING, PAID = ReferralStatus.PENDING, ReferralStatus.PROCESSING, ReferralStatus.PAID
BEFORE = CUTOFF - timedelta(days=1)


def entry(
    referral_id: str,
    user_id: str,
    cents: int,
    kind: RewardKind = RewardKind.REFEREE,
    **changes: object,
) -> Reward:
    base = Reward(new_id(datetime.now(UTC)), referral_id, user_id, kind, cents, PENDING, BEFORE)
    return replace(base, **changes)  # type: ignore[arg-type]


def add_entries(store: Store, entries: list[Reward]) -> None:
    with store.unit_of_work() as uow:
        for e in entries:
            uow.rewards.add(e)
        uow.commit()


@pytest.fixture
def ledger(store: Store) -> dict[str, Referral | Reward]:
    """Alice referred Bob (pending) and Carol (paid in September, since reversed); Bob
    has his referee reward, and Alice a clawback of Carol's reward."""
    for user in ("alice", "bob", "carol"):
        add_referrer(store, referrer(user, user.upper()))
    bob = referral("alice", "bob", 1, reward_cents=1000, created_at=BEFORE)
    carol = referral(
        "alice",
        "carol",
        2,
        reward_cents=1500,
        created_at=BEFORE - timedelta(days=40),
        status=ReferralStatus.CLAWED_BACK,
        payout_period="2026-09",
    )
    seed(store, [bob, carol])
    bonus = entry(bob.id, "bob", 500)
    clawback = entry(carol.id, "alice", -1500, RewardKind.CLAWBACK)
    add_entries(store, [bonus, clawback])
    return {"bob": bob, "carol": carol, "bonus": bonus, "clawback": clawback}


def test_an_entry_round_trips_and_is_found_by_its_referral(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1)
    seed(store, [r])
    later = entry(r.id, "alice", -1000, RewardKind.CLAWBACK, hold=timedelta(days=3), note="x")
    first = entry(r.id, "bob", 500, payout_period="2026-09", status=PAID)
    add_entries(store, [later, first] if later.id < first.id else [first, later])
    with store.read() as uow:
        assert uow.rewards.get(first.id) == first
        assert uow.rewards.get(later.id) == later
        assert list(uow.rewards.for_referral(r.id)) == sorted([first, later], key=lambda e: e.id)
        assert list(uow.rewards.for_referral("01NOSUCHREFERRAL0000000000")) == []
        assert uow.rewards.get("01NOSUCHREFERRAL0000000000") is None


def test_an_entry_id_is_written_once(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1)
    seed(store, [r])
    first = entry(r.id, "bob", 500)
    add_entries(store, [first])
    with pytest.raises(Conflict):
        add_entries(store, [replace(first, cents=700)])


def test_entry_transitions_are_conditional(store: Store, ledger: dict) -> None:
    bonus = ledger["bonus"]
    with store.unit_of_work() as uow:
        held = uow.rewards.transition(bonus.id, {PENDING}, ReferralStatus.HELD, "flagged")
        assert held == replace(bonus, status=ReferralStatus.HELD, note="flagged")
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.rewards.transition(bonus.id, {PENDING}, PAID, None) is None
        assert uow.rewards.get(bonus.id) == held


def test_an_awaiting_referral_qualifies_once(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1, status=ReferralStatus.AWAITING)
    seed(store, [r])
    receipt = Receipt("conversion:purchase", 1, 1000, hold_days=2)
    hold = timedelta(days=5, microseconds=7)
    with store.unit_of_work() as uow:
        qualified = uow.referrals.qualify(r.id, PENDING, hold, receipt, 700)
        assert qualified == replace(r, status=PENDING, hold=hold, receipt=receipt, reward_cents=700)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.referrals.qualify(r.id, ReferralStatus.HELD, hold, receipt, 1) is None
        assert uow.referrals.get(r.id) == qualified


def test_an_awaiting_referral_is_never_assigned_nor_counted(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    seed(store, [referral("alice", "bob", 1, status=ReferralStatus.AWAITING)])
    assert claim(store, "one")
    assert assign(store, 10) == [0]
    with store.read() as uow:
        assert uow.referrers.earnings("alice", NOW) == Earnings()


def test_conversions_are_recorded_once_by_external_id(store: Store) -> None:
    first = Conversion(
        "order-1", "bob", "purchase", 4999, T0, referral_id=new_id(datetime.now(UTC))
    )
    bare = Conversion("order-2", "bob", "signup", None, T0)
    with store.unit_of_work() as uow:
        uow.conversions.add(first)
        uow.conversions.add(bare)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.conversions.add(replace(first, user_id="mallory"))
        uow.commit()
    with store.read() as uow:
        assert uow.conversions.get("order-1") == first
        assert uow.conversions.get("order-2") == bare
        assert uow.conversions.get("order-3") is None


def test_earnings_split_every_state_for_the_user_paid(store: Store, ledger: dict) -> None:
    add_entries(
        store,
        [
            entry(ledger["bob"].id, "alice", 700, hold=NOW - BEFORE),  # payable exactly at NOW
            entry(ledger["bob"].id, "alice", 300, hold=NOW - BEFORE + timedelta(seconds=1)),
            entry(ledger["bob"].id, "alice", 50, status=PROCESSING, payout_period="2026-10"),
            entry(ledger["bob"].id, "alice", 20, status=ReferralStatus.HELD),
            entry(ledger["bob"].id, "alice", 9, status=ReferralStatus.REJECTED),
            entry(ledger["bob"].id, "alice", 9, status=ReferralStatus.REVERSED),
        ],
    )
    with store.read() as uow:
        alice = uow.referrers.earnings("alice", NOW)
        assert alice == Earnings(
            pending_cents=300,
            payable_cents=1000 + 700 + 50,
            held_cents=20,
            paid_cents=1500,  # Carol's reward was paid, then clawed back
            clawed_back_cents=1500,
        )
        assert alice.earned_cents == 300 + 1750 + 20
        assert uow.referrers.earnings("bob", NOW) == Earnings(payable_cents=500)


def test_a_run_assigns_entries_with_referrals_batch_by_batch(store: Store, ledger: dict) -> None:
    assert claim(store, "one")
    assert assign(store, 1) == [1, 1, 1, 0]
    with store.read() as uow:
        assert uow.referrals.get(ledger["bob"].id).status is PROCESSING  # type: ignore[union-attr]
        for name in ("bonus", "clawback"):
            assigned = uow.rewards.get(ledger[name].id)
            assert assigned is not None
            assert (assigned.status, assigned.payout_period) == (PROCESSING, "2026-10")


def test_lines_show_a_clawback_as_its_own_line(store: Store, ledger: dict) -> None:
    assert claim(store, "one")
    assign(store, 10)
    expected = [
        PayoutLine("alice", 1, 1000),
        PayoutLine("alice", 1, -1500, LineKind.CLAWBACK),
        PayoutLine("bob", 1, 500),
    ]
    with store.read() as uow:
        assert list(uow.payouts.lines("2026-10")) == expected
        assert list(uow.payouts.preview("2026-10", CUTOFF)) == expected


def test_preview_counts_eligible_entries_before_any_run(store: Store, ledger: dict) -> None:
    with store.read() as uow:
        assert [
            (x.referrer_id, x.kind, x.amount_cents) for x in uow.payouts.preview("2026-10", CUTOFF)
        ] == [("alice", "reward", 1000), ("alice", "clawback", -1500), ("bob", "reward", 500)]


def release(store: Store, minimum: int) -> tuple[int, int]:
    with store.unit_of_work() as uow:
        assert uow.payouts.renew("2026-10", "one", NOW + LEASE)
        released = uow.payouts.release("2026-10", Minimums({}, minimum))
        uow.commit()
    return released


def test_release_carries_forward_totals_below_the_minimum(store: Store, ledger: dict) -> None:
    assert claim(store, "one")
    assign(store, 10)
    # Alice nets -500 (never paid out), Bob 500, below the minimum of 600: Bob's 500 is
    # deferred, Alice's debt carried (and counts for nothing in the sum).
    assert release(store, 600) == (2, 500)
    with store.read() as uow:
        assert list(uow.payouts.lines("2026-10")) == []
        back = uow.rewards.get(ledger["bonus"].id)
        assert back is not None and (back.status, back.payout_period) == (PENDING, None)
    assert assign(store, 10) == [3]  # a later run (here: the same one resumed) takes them again


def test_release_keeps_totals_at_or_above_the_minimum(store: Store, ledger: dict) -> None:
    assert claim(store, "one")
    assign(store, 10)
    assert release(store, 500) == (1, 0)  # only Alice, who owes: nothing deferred
    with store.read() as uow:
        assert [line.referrer_id for line in uow.payouts.lines("2026-10")] == ["bob"]


def test_complete_pays_the_entries_and_keeps_the_run_totals(store: Store, ledger: dict) -> None:
    assert claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None
    done = replace(
        run,
        status=RunStatus.COMPLETED,
        total_cents=0,
        clawback_cents=1500,
        carried_forward_cents=250,
        completed_at=NOW,
    )
    with store.unit_of_work() as uow:
        assert uow.payouts.complete(done, "one") == 3
        uow.commit()
    with store.read() as uow:
        stored = uow.payouts.get("2026-10")
        assert stored is not None
        assert (stored.clawback_cents, stored.carried_forward_cents) == (1500, 250)
        paid = uow.rewards.get(ledger["clawback"].id)
        assert paid is not None and paid.status is PAID
        assert uow.referrers.earnings("alice", NOW) == Earnings(
            paid_cents=2500, clawed_back_cents=1500
        )


def test_a_paid_reward_clawed_back_later_stays_in_its_runs_lines(
    store: Store, ledger: dict
) -> None:
    """A completed run's report is rendered again from its lines: they must not change."""
    with store.read() as uow:
        assert list(uow.payouts.lines("2026-09")) == [PayoutLine("alice", 1, 1500)]


def test_pending_entries_on_hold_at_the_cutoff_wait(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1)
    seed(store, [r])
    at: datetime = CUTOFF - timedelta(days=2)
    add_entries(store, [entry(r.id, "bob", 500, created_at=at, hold=timedelta(days=2))])
    assert claim(store, "one")
    assert assign(store, 10) == [1]  # the referral only


def test_a_clawback_offset_by_new_rewards_settles_at_zero(store: Store, ledger: dict) -> None:
    add_entries(store, [entry(ledger["bob"].id, "alice", 500)])  # Alice: 1000 + 500 - 1500
    assert claim(store, "one")
    assign(store, 10)
    assert release(store, 0) == (0, 0)
    with store.read() as uow:
        assert [(x.referrer_id, x.kind, x.amount_cents) for x in uow.payouts.lines("2026-10")] == [
            ("alice", "reward", 1500),
            ("alice", "clawback", -1500),
            ("bob", "reward", 500),
        ]


def test_a_signup_slot_is_taken_once(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.conversions.signup_slot("bob") is None
        uow.conversions.take_signup_slot(SignupSlot("bob", "order-1"))
        uow.conversions.take_signup_slot(SignupSlot("carol", None))
        uow.commit()
    with store.read() as uow:
        assert uow.conversions.signup_slot("bob") == SignupSlot("bob", "order-1")
        assert uow.conversions.signup_slot("carol") == SignupSlot("carol", None)
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.conversions.take_signup_slot(SignupSlot("bob", None))
        uow.commit()
    with store.read() as uow:
        assert uow.conversions.signup_slot("bob") == SignupSlot("bob", "order-1")
