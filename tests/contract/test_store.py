"""The behaviour every store must have, whatever the database behind it."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import (
    ApiKey,
    Earnings,
    Referral,
    ReferralStatus,
    Referrer,
    Role,
    SignupParties,
    new_id,
)
from referrals.ports import Store
from referrals.services.keys import FIRST_KEY_ID, create_first_admin_key
from referrals.services.retry import retry_on_conflict
from tests.clocks import FixedClock

T0 = datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def referrer(user_id: str, code: str, email: str | None = None) -> Referrer:
    return Referrer(user_id, code, email, referral_count=0, created_at=T0)


def referral(referrer_id: str, referee_id: str, ordinal: int, **changes: object) -> Referral:
    base = Referral(
        id=new_id(datetime.now(UTC)),
        referee_id=referee_id,
        referrer_id=referrer_id,
        code="ALICE",
        email=None,
        ordinal=ordinal,
        reward_cents=1000,
        status=ReferralStatus.PENDING,
        created_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def add_referrer(store: Store, r: Referrer) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(r)
        uow.commit()


def get_referrer(store: Store, user_id: str) -> Referrer:
    with store.read() as uow:
        found = uow.referrers.get(user_id)
    assert found is not None
    return found


def test_referrer_round_trips_exactly(store: Store) -> None:
    alice = referrer("alice", "Alice-1", "alice@example.com")
    add_referrer(store, alice)
    with store.read() as uow:
        assert uow.referrers.get("alice") == alice
        assert uow.referrers.get("bob") is None


def test_code_lookup_ignores_case(store: Store) -> None:
    add_referrer(store, referrer("alice", "Alice-1"))
    with store.read() as uow:
        found = uow.referrers.by_code("aLiCe-1")
        assert found is not None and found.user_id == "alice" and found.code == "Alice-1"
        assert uow.referrers.by_code("alice-2") is None


def test_duplicate_user_conflicts(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with pytest.raises(Conflict):
        add_referrer(store, referrer("alice", "A2"))


def test_duplicate_code_in_another_case_conflicts(store: Store) -> None:
    add_referrer(store, referrer("alice", "SUMMER"))
    with pytest.raises(Conflict):
        add_referrer(store, referrer("bob", "summer"))
    with store.read() as uow:
        assert uow.referrers.get("bob") is None


def test_uncommitted_work_is_discarded(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice", "A1"))
    with store.read() as uow:
        assert uow.referrers.get("alice") is None


def test_failed_work_is_rolled_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice", "A1"))
        raise RuntimeError("crash before commit")
    with store.read() as uow:
        assert uow.referrers.get("alice") is None


def test_increment_returns_consecutive_counts(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    counts = []
    for _ in range(3):
        with store.unit_of_work() as uow:
            counts.append(uow.referrers.increment_referral_count("alice").referral_count)
            uow.commit()
    assert counts == [1, 2, 3]
    with store.read() as uow:
        assert uow.referrers.get("alice").referral_count == 3  # type: ignore[union-attr]


def test_rolled_back_increment_leaves_no_gap(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        uow.referrers.increment_referral_count("alice")
    with store.unit_of_work() as uow:
        assert uow.referrers.increment_referral_count("alice").referral_count == 1


def test_concurrent_increments_never_share_or_skip_a_count(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))

    def attempt() -> int:
        with store.unit_of_work() as uow:
            count = uow.referrers.increment_referral_count("alice").referral_count
            uow.commit()
            return count

    def increment(_: int) -> int:
        # Optimistic stores report a lost race as a Conflict; the use cases retry it.
        return retry_on_conflict(attempt)

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(increment, range(120)))
    assert sorted(counts) == list(range(1, 121))


def test_referral_round_trips_with_microsecond_times(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1, email="bob@example.com", payout_period="2026-01")
    with store.unit_of_work() as uow:
        uow.referrals.add(r)
        uow.commit()
    with store.read() as uow:
        assert uow.referrals.get(r.id) == r
        assert uow.referrals.by_referee("bob") == r
        assert uow.referrals.by_referee("carol") is None


def test_a_referee_can_be_referred_once(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    add_referrer(store, referrer("dave", "D1"))
    with store.unit_of_work() as uow:
        uow.referrals.add(referral("alice", "bob", 1))
        uow.commit()
    # A store may raise at once or when the unit of work commits.
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrals.add(referral("dave", "bob", 1))
        uow.commit()
    with store.read() as uow:
        assert uow.referrals.by_referee("bob").referrer_id == "alice"  # type: ignore[union-attr]


def test_signup_parties_are_read_together_the_referrers_count_taken(store: Store) -> None:
    alice, bob = referrer("alice", "Alice-1", "a@example.com"), referrer("bob", "B1")
    add_referrer(store, alice)
    add_referrer(store, bob)
    earlier = referral("alice", "bob", 1, email="b@example.com", payout_period="2026-01")
    with store.unit_of_work() as uow:
        uow.referrals.add(earlier)
        uow.commit()
    with store.unit_of_work() as uow:
        once, twice = replace(alice, referral_count=1), replace(alice, referral_count=2)
        assert uow.referrals.parties_counted("ALICE-1", "bob") == SignupParties(once, earlier, bob)
        assert uow.referrals.parties_counted("alice-1", "carol") == SignupParties(twice, None, None)
        assert uow.referrals.parties_counted("NOPE", "carol") == SignupParties(None, None, None)
        uow.commit()
    with store.unit_of_work() as uow:
        # An unknown code names no program, so there is nothing else to read.
        assert uow.referrals.parties_counted("NOPE", "alice") == SignupParties(None, None, None)
    assert get_referrer(store, "alice").referral_count == 2


def test_a_count_given_back_is_as_if_never_taken(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        uow.referrals.parties_counted("A1", "bob")
        uow.referrers.give_back_count("alice")  # bob was refused
        assert uow.referrals.parties_counted("A1", "carol").referrer.referral_count == 1  # type: ignore[union-attr]
        uow.commit()
    assert get_referrer(store, "alice").referral_count == 1


def test_a_count_given_back_stays_back_when_the_unit_commits_other_writes(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        uow.referrals.parties_counted("A1", "bob")
        uow.referrers.give_back_count("alice")  # bob was replayed
        uow.referrers.add(referrer("dave", "D1"))  # another signup's referee, enrolled
        uow.commit()
    assert get_referrer(store, "alice").referral_count == 0
    assert get_referrer(store, "dave").code == "D1"


def test_referral_needs_an_existing_referrer(store: Store) -> None:
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrals.add(referral("ghost", "bob", 1))
        uow.commit()


def test_referrals_of_a_referrer_page_by_ordinal(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    add_referrer(store, referrer("dave", "D1"))
    with store.unit_of_work() as uow:
        for n in (3, 1, 2, 4):
            uow.referrals.add(referral("alice", f"a{n}", n))
        uow.referrals.add(referral("dave", "d1", 1))
        uow.commit()
    with store.read() as uow:
        assert [r.ordinal for r in uow.referrals.for_referrer("alice", None, 3)] == [1, 2, 3]
        assert [r.ordinal for r in uow.referrals.for_referrer("alice", 3, 3)] == [4]
        assert [r.referee_id for r in uow.referrals.for_referrer("dave", None, 10)] == ["d1"]


def test_search_filters_and_orders_by_id(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    add_referrer(store, referrer("dave", "D1"))
    rows = [
        referral("alice", "a1", 1),
        referral("alice", "a2", 2, status=ReferralStatus.PAID),
        referral("dave", "d1", 1),
    ]
    with store.unit_of_work() as uow:
        for r in rows:
            uow.referrals.add(r)
        uow.commit()
    ids = sorted(r.id for r in rows)
    with store.read() as uow:
        assert [r.id for r in uow.referrals.search(None, None, None, 10)] == ids
        assert [r.id for r in uow.referrals.search(None, None, ids[0], 10)] == ids[1:]
        paid = uow.referrals.search(ReferralStatus.PAID, None, None, 10)
        assert [r.referee_id for r in paid] == ["a2"]
        assert [r.referee_id for r in uow.referrals.search(None, "dave", None, 10)] == ["d1"]
        assert len(uow.referrals.search(None, None, None, 2)) == 2


def test_earnings_split_pending_and_paid(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        uow.referrals.add(referral("alice", "a1", 1, reward_cents=1000))
        uow.referrals.add(referral("alice", "a2", 2, reward_cents=1500, status=ReferralStatus.PAID))
        uow.referrals.add(
            referral("alice", "a3", 3, reward_cents=2000, status=ReferralStatus.PROCESSING)
        )
        uow.commit()
    with store.read() as uow:
        # Payable since T0; a reward being paid out counts as payable too.
        assert uow.referrers.earnings("alice", T0) == Earnings(payable_cents=3000, paid_cents=1500)
        assert uow.referrers.earnings("nobody", T0) == Earnings()


def test_api_keys_are_found_by_hash(store: Store) -> None:
    key = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0 - timedelta(days=1))
    with store.unit_of_work() as uow:
        assert uow.api_keys.count() == 0
        uow.api_keys.add(key)
        uow.commit()
    with store.read() as uow:
        assert uow.api_keys.by_hash("ab" * 32) == key
        assert uow.api_keys.by_hash("cd" * 32) is None
        assert uow.api_keys.count() == 1


def test_api_key_ids_are_unique(store: Store) -> None:
    first = ApiKey(FIRST_KEY_ID, Role.ADMIN, "ab" * 32, T0)
    with store.unit_of_work() as uow:
        uow.api_keys.add(first)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.api_keys.add(ApiKey(FIRST_KEY_ID, Role.ADMIN, "cd" * 32, T0))
        uow.commit()
    with store.read() as uow:
        assert uow.api_keys.count() == 1
        assert uow.api_keys.by_hash("ab" * 32) == first  # the readable id round-trips


def test_the_first_admin_key_is_made_once_named_and_audited(store: Store) -> None:
    clock = FixedClock(T0)
    assert create_first_admin_key(store, clock) is not None
    assert create_first_admin_key(store, clock) is None
    with store.read() as uow:
        assert uow.api_keys.count() == 1
        entries = [(a.actor, a.action, a.target) for a in uow.audit.list(None, 10)]
    assert entries == [("cli", "key.create", f"key:{FIRST_KEY_ID}")]


def test_first_created_at_is_when_the_oldest_key_was_made(store: Store) -> None:
    with store.read() as uow:
        assert uow.api_keys.first_created_at() is None
    with store.unit_of_work() as uow:
        uow.api_keys.add(ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0))
        uow.api_keys.add(
            ApiKey(new_id(datetime.now(UTC)), Role.ADMIN, "cd" * 32, T0 - timedelta(days=40))
        )
        uow.api_keys.add(
            ApiKey(new_id(datetime.now(UTC)), Role.ADMIN, "ef" * 32, T0 + timedelta(days=1))
        )
        uow.commit()
    with store.read() as uow:
        assert uow.api_keys.first_created_at() == T0 - timedelta(days=40)
