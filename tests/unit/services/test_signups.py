from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.checks import Fingerprints, FraudChecks, unkeyed_fingerprint
from referrals.domain.errors import AlreadyReferred, CodeNotFound, InvalidInput, SelfReferral
from referrals.domain.model import ReferralStatus, Referrer, RewardKind
from referrals.domain.program import RuleVersion
from referrals.domain.tiers import TierSchedule
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

PRINTS = Fingerprints(b"unit-test-fingerprint-key-0123456789")


@pytest.fixture
def code(store: MemoryStore, clock: FixedClock) -> str:
    return enroll(store, clock, "alice", "Alice@Example.com", code="ALICE-1").referrer.code


def test_signup_records_ordinal_reward_and_counter(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    result = sign_up(store, clock, program, "bob", code, "bob@example.com")
    assert not result.replayed
    assert result.referral.ordinal == result.referral_count == 1
    assert result.referral.reward_cents == 1000
    assert result.referral.status is ReferralStatus.PENDING
    with store.read() as uow:
        assert uow.referrers.get("alice").referral_count == 1  # type: ignore[union-attr]


def test_fifth_signup_is_priced_at_the_second_tier(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    rewards = [
        sign_up(store, clock, program, f"u{i}", code).referral.reward_cents for i in range(6)
    ]
    assert rewards == [1000, 1000, 1000, 1000, 1500, 1500]


def test_code_matches_case_insensitively(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    assert sign_up(store, clock, program, "bob", code.lower()).referral.referrer_id == "alice"


def test_referee_is_enrolled_with_a_code(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    result = sign_up(store, clock, program, "bob", code, "bob@example.com")
    with store.read() as uow:
        bob = uow.referrers.get("bob")
    assert bob is not None and bob.code == result.referee_code and bob.email == "bob@example.com"


def test_referee_is_not_enrolled_when_the_program_says_so(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    result = sign_up(store, clock, RuleVersion(auto_enroll_referees=False), "bob", code)
    assert result.referee_code is None
    with store.read() as uow:
        assert uow.referrers.get("bob") is None


def test_replay_returns_the_original_result_and_writes_nothing(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    first = sign_up(store, clock, program, "bob", code)
    sign_up(store, clock, program, "carol", code)
    again = sign_up(store, clock, program, "bob", code.lower())
    assert again.replayed
    assert again.referral == first.referral
    assert again.referral_count == 1 and again.referee_code == first.referee_code
    with store.read() as uow:
        assert uow.referrers.get("alice").referral_count == 2  # type: ignore[union-attr]


def test_same_user_with_another_code_conflicts(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    other = enroll(store, clock, "dave").referrer.code
    sign_up(store, clock, program, "bob", code)
    with pytest.raises(AlreadyReferred):
        sign_up(store, clock, program, "bob", other)


def test_self_referral_by_user_id(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(SelfReferral):
        sign_up(store, clock, program, "alice", code)


def test_self_referral_by_email_ignores_case(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(SelfReferral):
        sign_up(store, clock, program, "alice-2nd-account", code, "ALICE@example.COM")
    with store.read() as uow:
        assert uow.referrers.get("alice").referral_count == 0  # type: ignore[union-attr]


def test_unknown_code(store: MemoryStore, clock: FixedClock, program: RuleVersion) -> None:
    with pytest.raises(CodeNotFound):
        sign_up(store, clock, program, "bob", "NOSUCH")


def test_custom_schedule_is_applied(store: MemoryStore, clock: FixedClock, code: str) -> None:
    program = RuleVersion(TierSchedule.parse("1:100,2:200"))
    rewards = [
        sign_up(store, clock, program, f"u{i}", code).referral.reward_cents for i in range(3)
    ]
    assert rewards == [100, 200, 200]


def test_import_sets_created_at(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    past = clock.now() - timedelta(days=40)
    assert (
        sign_up(store, clock, program, "bob", code, signed_up_at=past).referral.created_at == past
    )


def test_import_in_the_future_is_refused(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(InvalidInput):
        sign_up(store, clock, program, "bob", code, signed_up_at=clock.now() + timedelta(seconds=1))


def test_concurrent_signups_get_exact_ordinals(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: sign_up(store, clock, program, f"u{i}", code), range(60)))
    assert sorted(r.referral.ordinal for r in results) == list(range(1, 61))
    assert all(
        r.referral.reward_cents == program.tiers.reward_for(r.referral.ordinal) for r in results
    )


def test_a_flagged_signup_is_recorded_with_its_reward_held(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    result = sign_up(store, clock, program, "bob", code, "alice+2@example.com")
    assert result.referral.status is ReferralStatus.PENDING  # example.com keeps +tags
    held = sign_up(store, clock, program, "carol", code, "carol@mailinator.com").referral
    assert held.status is ReferralStatus.HELD
    assert held.receipt is not None
    assert [c.name for c in held.receipt.failed] == ["disposable_email"]
    with store.read() as uow:
        assert uow.referrals.get(held.id) == held


def test_the_receipt_names_the_tier_and_the_hold(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    program = RuleVersion(hold=timedelta(days=30))
    for n in range(4):
        sign_up(store, clock, program, f"u{n}", code)
    fifth = sign_up(store, clock, program, "u4", code).referral
    assert fifth.receipt is not None
    assert (fifth.receipt.rule, fifth.receipt.tier_threshold, fifth.receipt.tier_cents) == (
        "signup",
        5,
        1500,
    )
    assert fifth.receipt.hold_days == 30
    assert fifth.payable_at == clock.now() + timedelta(days=30)


def test_a_referee_on_the_referrers_device_is_held(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(
        store,
        clock,
        "dave",
        code="DAVE-1",
        ip="198.51.100.7",
        device_id="phone-1",
        fingerprints=PRINTS,
    )
    same_ip = sign_up(
        store, clock, program, "erin", "DAVE-1", ip="198.51.100.7", fingerprints=PRINTS
    ).referral
    other = sign_up(
        store, clock, program, "frank", "DAVE-1", ip="198.51.100.8", fingerprints=PRINTS
    ).referral
    assert same_ip.status is ReferralStatus.HELD
    assert other.status is ReferralStatus.PENDING


def test_only_keyed_fingerprints_are_kept(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(store, clock, "dave", code="DAVE-1", ip="198.51.100.7", fingerprints=PRINTS)
    sign_up(store, clock, program, "erin", "DAVE-1", device_id="phone-2", fingerprints=PRINTS)
    with store.read() as uow:
        dave, erin = uow.referrers.get("dave"), uow.referrers.get("erin")
    assert dave is not None and erin is not None
    dave_ip, erin_device = PRINTS("198.51.100.7"), PRINTS("phone-2")
    assert dave_ip is not None and erin_device is not None
    assert (dave.ip_hash, erin.device_hash) == (dave_ip.stored, erin_device.stored)
    assert dave_ip.unkeyed not in (dave.ip_hash, erin.device_hash)


def test_a_referrer_fingerprinted_before_the_upgrade_is_still_compared(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    """A referrer enrolled before fingerprints were keyed keeps the unkeyed one: a
    signup's address is compared with it in that form too."""
    old = Referrer(
        "olga", "OLGA-1", None, 0, clock.now(), ip_hash=unkeyed_fingerprint("198.51.100.7")
    )
    with store.unit_of_work() as uow:
        uow.referrers.add(old)
        uow.commit()
    same = sign_up(
        store, clock, program, "erin", "OLGA-1", ip="198.51.100.7", fingerprints=PRINTS
    ).referral
    other = sign_up(
        store, clock, program, "frank", "OLGA-1", ip="198.51.100.8", fingerprints=PRINTS
    ).referral
    assert (same.status, other.status) == (ReferralStatus.HELD, ReferralStatus.PENDING)


def test_an_address_without_the_fingerprints_is_refused_not_kept_unkeyed(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(ValueError, match="fingerprints"):
        enroll(store, clock, "dave", ip="198.51.100.7")
    with pytest.raises(ValueError, match="fingerprints"):
        sign_up(store, clock, program, "erin", code, device_id="phone-1")
    with store.read() as uow:
        assert uow.referrers.get("dave") is None and uow.referrals.by_referee("erin") is None


def test_an_auto_enrolled_referee_keeps_their_fingerprints_for_their_own_referrals(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    bob_code = sign_up(
        store, clock, program, "bob", code, device_id="bobs-phone", fingerprints=PRINTS
    ).referee_code
    assert bob_code is not None
    carol = sign_up(
        store, clock, program, "carol", bob_code, device_id="bobs-phone", fingerprints=PRINTS
    ).referral
    assert carol.status is ReferralStatus.HELD


def test_velocity_holds_the_referrals_beyond_the_hourly_limit(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    program = RuleVersion(checks=FraudChecks(velocity_per_hour=3))
    statuses = []
    for n in range(5):
        statuses.append(sign_up(store, clock, program, f"u{n}", code).referral.status)
        clock.advance(minutes=10)
    clock.advance(hours=1)
    statuses.append(sign_up(store, clock, program, "later", code).referral.status)
    pending, held = ReferralStatus.PENDING, ReferralStatus.HELD
    assert statuses == [pending, pending, pending, held, held, pending]


def test_a_double_sided_program_rewards_the_referee_too(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    program = RuleVersion(referee_reward_cents=500, hold=timedelta(days=3))
    referral = sign_up(store, clock, program, "bob", code).referral
    flagged = sign_up(store, clock, program, "carol", code, "carol@yopmail.com").referral
    with store.read() as uow:
        [bonus] = uow.rewards.for_referral(referral.id)
        [held] = uow.rewards.for_referral(flagged.id)
    assert (bonus.user_id, bonus.kind, bonus.cents, bonus.status) == (
        "bob",
        RewardKind.REFEREE,
        500,
        ReferralStatus.PENDING,
    )
    assert bonus.payable_at == referral.payable_at == clock.now() + timedelta(days=3)
    assert held.status is ReferralStatus.HELD  # it shares its referral's review


def test_the_created_event_says_whether_the_reward_is_earned_or_held(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    sign_up(store, clock, program, "bob", code)
    sign_up(store, clock, program, "carol", code, "carol@yopmail.com")
    with store.read() as uow:
        events = uow.outbox.list(None, 10)
    # By referee, not by id: two ids minted in one millisecond may sort either way.
    assert {e.payload["referee_id"]: e.payload["status"] for e in events} == {
        "bob": "pending",
        "carol": "held",
    }
    assert len(events) == 2


CAPPED = RuleVersion(monthly_cap_cents=2500, lifetime_cap_cents=4000)


def test_the_monthly_cap_cuts_the_reward_and_the_receipt_says_so(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    referrals = [sign_up(store, clock, CAPPED, f"u{i}", code).referral for i in range(4)]
    assert [r.reward_cents for r in referrals] == [1000, 1000, 500, 0]
    assert [r.ordinal for r in referrals] == [1, 2, 3, 4]  # capped ones still count for tiers
    assert [r.receipt.cap for r in referrals if r.receipt] == [None, None, "monthly", "monthly"]
    assert referrals[3].receipt is not None and referrals[3].receipt.tier_cents == 1000
    with store.read() as uow:
        alice = uow.referrers.get("alice")
    assert alice is not None and alice.cap_counters == (2500, "2026-03", 2500)


def test_a_new_month_opens_the_monthly_cap_until_the_lifetime_cap(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    march = [sign_up(store, clock, CAPPED, f"m{i}", code).referral for i in range(3)]
    clock.advance(days=31)  # April
    april = [sign_up(store, clock, CAPPED, f"a{i}", code).referral for i in range(3)]
    assert [r.reward_cents for r in march] == [1000, 1000, 500]
    assert [r.reward_cents for r in april] == [1000, 500, 0]  # 4000 in all
    assert [r.receipt.cap for r in april if r.receipt] == [None, "lifetime", "lifetime"]


def test_an_import_counts_in_its_own_month(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    program = RuleVersion(monthly_cap_cents=1500)
    january = clock.now().replace(month=1)
    imported = [
        sign_up(store, clock, program, f"old{i}", code, signed_up_at=january).referral
        for i in range(2)
    ]
    live = sign_up(store, clock, program, "new", code).referral
    assert [r.reward_cents for r in imported] == [1000, 500]
    assert live.reward_cents == 1000  # March has its own cap
