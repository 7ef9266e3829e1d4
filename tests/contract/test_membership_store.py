"""Membership per program, on every store: a user is a referrer once per program with a
code of their own in each (codes unique across programs), is referred once per program,
and counts, caps, earnings, lists and signup slots are the program's.

The last tests sign up through the use case with real threads: two programs, one
referrer in both, ordinals and tiers exact in each."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    SignupParties,
    SignupSlot,
    new_id,
)
from referrals.domain.program import RuleVersion
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Store, UnitOfWork
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
PARTNERS = "partners"


def member(user_id: str, code: str, program: str = "default") -> Referrer:
    return Referrer(user_id, code, None, referral_count=0, created_at=T0, program_id=program)


def referral(referrer_id: str, referee_id: str, ordinal: int, program: str) -> Referral:
    return Referral(
        id=new_id(datetime.now(UTC)),
        referee_id=referee_id,
        referrer_id=referrer_id,
        code="X",
        email=None,
        ordinal=ordinal,
        reward_cents=1000 if program == "default" else 5000,
        status=ReferralStatus.PENDING,
        created_at=T0,
        program_id=program,
    )


def add(store: Store, *records: Referrer | Referral) -> None:
    with store.unit_of_work() as uow:
        for record in records:
            if isinstance(record, Referrer):
                uow.referrers.add(record)
            else:
                uow.referrals.add(record)
        uow.commit()


def test_a_user_is_a_referrer_in_two_programs_with_a_code_in_each(store: Store) -> None:
    add(store, member("alice", "ALICE"), member("alice", "ALICE-PARTNER", PARTNERS))
    with store.read() as uow:
        assert uow.referrers.get("alice") == member("alice", "ALICE")
        assert uow.referrers.get("alice", program=PARTNERS) == member(
            "alice", "ALICE-PARTNER", PARTNERS
        )
        assert uow.referrers.get("alice", program="other") is None
        found = uow.referrers.by_code("alice-partner")
    assert found is not None and found.program_id == PARTNERS


def test_a_code_is_unique_across_programs(store: Store) -> None:
    add(store, member("alice", "SHARED"))
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrers.add(member("bob", "shared", PARTNERS))
        uow.commit()
    with store.read() as uow:
        assert uow.referrers.get("bob", program=PARTNERS) is None


def test_a_user_is_a_referrer_once_per_program(store: Store) -> None:
    add(store, member("alice", "A1", PARTNERS))
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrers.add(member("alice", "A2", PARTNERS))
        uow.commit()


def test_a_user_is_referred_once_per_program(store: Store) -> None:
    add(store, member("alice", "A1"), member("alice", "A2", PARTNERS))
    first, second = referral("alice", "bob", 1, "default"), referral("alice", "bob", 1, PARTNERS)
    add(store, first, second)
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrals.add(referral("alice", "bob", 2, PARTNERS))
        uow.commit()
    with store.read() as uow:
        assert uow.referrals.by_referee("bob") == first
        assert uow.referrals.by_referee("bob", program=PARTNERS) == second
        assert uow.referrals.get(second.id) == second


def test_a_referral_needs_its_referrer_in_its_own_program(store: Store) -> None:
    add(store, member("alice", "A1"))
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrals.add(referral("alice", "bob", 1, PARTNERS))
        uow.commit()


def test_a_code_counts_and_reads_in_its_own_program(store: Store) -> None:
    alice, partner = member("alice", "A1"), member("alice", "A2", PARTNERS)
    bob_partner = member("bob", "B2", PARTNERS)
    earlier = referral("alice", "bob", 1, "default")
    add(store, alice, partner, bob_partner)
    with store.unit_of_work() as uow:  # as a signup does: the count, then the referral
        uow.referrers.increment_referral_count("alice")
        uow.referrals.add(earlier)
        uow.commit()
    with store.unit_of_work() as uow:
        # bob was referred in the default program and is a referrer in partners only:
        # in partners, he has no earlier referral and his partners profile.
        parties = uow.referrals.parties_counted("a2", "bob")
        assert parties == SignupParties(replace(partner, referral_count=1), None, bob_partner)
        parties = uow.referrals.parties_counted("a1", "bob")
        assert parties == SignupParties(replace(alice, referral_count=2), earlier, None)
        uow.commit()
    with store.read() as uow:
        assert uow.referrers.get("alice").referral_count == 2  # type: ignore[union-attr]
        assert uow.referrers.get("alice", program=PARTNERS).referral_count == 1  # type: ignore[union-attr]


def test_caps_and_earnings_are_the_programs(store: Store) -> None:
    add(store, member("alice", "A1"), member("alice", "A2", PARTNERS))
    add(store, referral("alice", "bob", 1, "default"), referral("alice", "carol", 1, PARTNERS))
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-03", 5000, program=PARTNERS)
        uow.commit()
    with store.read() as uow:
        default = uow.referrers.get("alice")
        partners = uow.referrers.get("alice", program=PARTNERS)
        assert default is not None and default.cap_counters == (0, None, 0)
        assert partners is not None and partners.cap_counters == (5000, "2026-03", 5000)
        assert uow.referrers.earnings("alice", T0).payable_cents == 1000
        assert uow.referrers.earnings("alice", T0, program=PARTNERS).payable_cents == 5000


def test_an_entry_counts_in_its_programs_earnings(store: Store) -> None:
    add(store, member("alice", "A1", PARTNERS))
    paid = referral("alice", "bob", 1, PARTNERS)
    add(store, paid)
    bonus = Reward(
        new_id(T0),
        paid.id,
        "bob",
        RewardKind.REFEREE,
        700,
        ReferralStatus.PENDING,
        T0,
        program_id=PARTNERS,
    )
    with store.unit_of_work() as uow:
        uow.rewards.add(bonus)
        uow.commit()
    with store.read() as uow:
        assert uow.rewards.get(bonus.id) == bonus
        assert uow.referrers.earnings("bob", T0, program=PARTNERS).payable_cents == 700
        assert uow.referrers.earnings("bob", T0).payable_cents == 0


def test_lists_are_the_programs(store: Store) -> None:
    add(store, member("alice", "A1"), member("alice", "A2", PARTNERS))
    mine = referral("alice", "bob", 1, "default")
    theirs = [referral("alice", f"p{n}", n, PARTNERS) for n in (1, 2)]
    add(store, mine, *theirs)
    with store.read() as uow:
        assert uow.referrals.for_referrer("alice", None, 10) == [mine]
        assert uow.referrals.for_referrer("alice", None, 10, program=PARTNERS) == theirs
        by_id = sorted(theirs, key=lambda r: r.id)  # ids minted in one millisecond
        assert uow.referrals.search(None, None, None, 10, program=PARTNERS) == by_id
        assert uow.referrals.search(None, "alice", None, 10, program=PARTNERS) == by_id
        every = sorted([mine, *theirs], key=lambda r: r.id)
        assert uow.referrals.search(None, None, None, 10) == every


def test_signup_slots_are_taken_once_per_program(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.conversions.take_signup_slot(SignupSlot("bob", "ext-1"))
        uow.conversions.take_signup_slot(SignupSlot("bob", None, PARTNERS))
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.conversions.take_signup_slot(SignupSlot("bob", "ext-2", PARTNERS))
        uow.commit()
    with store.read() as uow:
        assert uow.conversions.signup_slot("bob") == SignupSlot("bob", "ext-1")
        assert uow.conversions.signup_slot("bob", program=PARTNERS) == SignupSlot(
            "bob", None, PARTNERS
        )
        assert uow.conversions.signup_slot("bob", program="other") is None


DEFAULT_RULES = RuleVersion(tiers=TierSchedule((Tier(1, 1000), Tier(5, 1500))))
# A monthly cap off any sum of rewards: the reward that crosses it is cut to what is left.
PARTNER_CAP = 32_500
PARTNER_RULES = RuleVersion(
    program_id=PARTNERS,
    tiers=TierSchedule((Tier(1, 5000), Tier(3, 7500))),
    monthly_cap_cents=PARTNER_CAP,
)


def _rules_for(program: str, _at: datetime, _uow: UnitOfWork) -> RuleVersion:
    return PARTNER_RULES if program == PARTNERS else DEFAULT_RULES


def test_ordinals_and_tiers_are_exact_per_program_under_concurrency(store: Store) -> None:
    """One referrer in two programs; referees sign up in both at once, some of them in
    both programs: each program's ordinals are 1..n, each reward priced by its tier,
    and the partner program's monthly cap reached exactly, the default program's
    rewards untouched by it."""
    add(store, member("alice", "ALICE"), member("alice", "ALICE-P", PARTNERS))
    clock = FixedClock(T0)
    signups = [(f"u{n}", code) for n in range(24) for code in ("ALICE", "ALICE-P") if n % 3]
    signups += [(f"v{n}", "ALICE") for n in range(8)]

    def signup(args: tuple[str, str]) -> Referral:
        user, code = args
        return sign_up(store, clock, _rules_for, user, code).referral

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(signup, signups))

    for program, rules in (("default", DEFAULT_RULES), (PARTNERS, PARTNER_RULES)):
        mine = [r for r in made if r.program_id == program]
        assert sorted(r.ordinal for r in mine) == list(range(1, len(mine) + 1))
        tiers = [rules.tiers.tier_of(r.ordinal).reward_cents for r in mine]
        assert [r.receipt.tier_cents for r in mine if r.receipt] == tiers
        assert all(r.receipt is not None and r.receipt.program == program for r in mine)
        if program == PARTNERS:
            assert sum(r.reward_cents for r in mine) == PARTNER_CAP < sum(tiers)
        else:
            assert [r.reward_cents for r in mine] == tiers
        with store.read() as uow:
            profile = uow.referrers.get("alice", program=program)
            stored = uow.referrals.for_referrer("alice", None, 100, program=program)
        assert profile is not None and profile.referral_count == len(mine)
        assert sorted(stored, key=lambda r: r.id) == sorted(mine, key=lambda r: r.id)
    # A referee of both programs is referred in each, and enrolled as a referrer in each.
    with store.read() as uow:
        assert uow.referrals.by_referee("u1") is not None
        assert uow.referrals.by_referee("u1", program=PARTNERS) is not None
        assert uow.referrers.get("u1", program=PARTNERS) is not None


def test_a_signup_replayed_answers_in_its_own_program(store: Store) -> None:
    add(store, member("alice", "ALICE"), member("carol", "CAROL-P", PARTNERS))
    clock = FixedClock(T0)
    first = sign_up(store, clock, _rules_for, "bob", "CAROL-P")
    again = sign_up(store, clock, _rules_for, "bob", "carol-p")
    other = sign_up(store, clock, _rules_for, "bob", "ALICE")
    assert again.replayed and again.referral == first.referral
    assert not other.replayed and other.referral.program_id == "default"
    assert first.referral.reward_cents == 5000 and other.referral.reward_cents == 1000
