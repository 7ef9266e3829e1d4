"""The caps' counters on every store: what they count, their conditional writes, and
caps that hold when signups and conversions of one referrer race."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import Referrer
from referrals.domain.program import RuleVersion, Trigger
from referrals.ports import Store
from referrals.services.conversions import record_conversion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.contract.test_store import add_referrer, referrer


def _alice(store: Store) -> Referrer:
    with store.read() as uow:
        alice = uow.referrers.get("alice")
    assert alice is not None
    return alice


def test_new_profiles_count_nothing(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    assert _alice(store).cap_counters == (0, None, 0)


def test_earned_amounts_count_by_month_and_are_given_back(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    for month, cents in [("2026-03", 1000), ("2026-03", 500), ("2026-04", 700)]:
        with store.unit_of_work() as uow:
            uow.referrers.add_earned("alice", month, cents)
            uow.commit()
    assert _alice(store).cap_counters == (2200, "2026-04", 700)
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-03", -1000)  # March's: April's stays
        uow.commit()
    assert _alice(store).cap_counters == (1200, "2026-04", 700)
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-04", -5000)  # never below zero
        uow.commit()
    assert _alice(store).cap_counters == (0, "2026-04", 0)


def test_the_increment_and_the_count_are_one_write(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        profile = uow.referrers.increment_referral_count("alice")
        assert (profile.referral_count, profile.cap_counters) == (1, (0, None, 0))
        uow.referrers.add_earned("alice", "2026-03", 1000, profile)
        uow.commit()
    alice = _alice(store)
    assert (alice.referral_count, alice.cap_counters) == (1, (1000, "2026-03", 1000))
    with store.unit_of_work() as uow:
        profile = uow.referrers.increment_referral_count("alice")
        assert (profile.referral_count, profile.cap_counters) == (2, (1000, "2026-03", 1000))


def test_a_count_priced_from_a_stale_profile_is_a_conflict(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    stale = _alice(store)
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-03", 1000)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-03", 1000, stale)
        uow.commit()
    assert _alice(store).cap_counters == (1000, "2026-03", 1000)


def test_rolled_back_counts_leave_nothing(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        uow.referrers.increment_referral_count("alice")
        uow.referrers.add_earned("alice", "2026-03", 1000)
    assert _alice(store).cap_counters == (0, None, 0)


def test_caps_hold_when_signups_and_conversions_race(store: Store) -> None:
    """Eight threads sign up and convert referees of one referrer at once: whatever
    the interleaving, the referrer never earns past a cap and the counter is exact."""
    clock = FixedClock()
    signups = RuleVersion(monthly_cap_cents=7000, lifetime_cap_cents=100_000)
    conversions = RuleVersion(trigger=Trigger.CONVERSION, monthly_cap_cents=7000)
    enroll(store, clock, "alice", code="ALICE-1")
    awaiting = [f"late{i}" for i in range(12)]
    for user in awaiting:
        sign_up(store, clock, conversions, user, "ALICE-1")

    def work(i: int) -> int:
        if i % 2:
            return sign_up(store, clock, signups, f"u{i}", "ALICE-1").referral.reward_cents
        result = record_conversion(
            store, clock, conversions, awaiting[i // 2], "purchase", f"o{i}", 100
        )
        assert result.referral is not None
        return result.referral.reward_cents

    with ThreadPoolExecutor(8) as pool:
        earned = list(pool.map(work, range(24)))
    assert sum(earned) == 7000
    assert all(0 <= cents <= 2000 for cents in earned)
    with store.read() as uow:
        rewards = [r.reward_cents for r in uow.referrals.for_referrer("alice", None, 100)]
    assert sum(rewards) == 7000  # what the referrals hold is what was counted
    assert _alice(store).cap_counters == (7000, "2026-03", 7000)
