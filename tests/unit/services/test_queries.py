import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.model import ReferralStatus
from referrals.domain.program import RuleVersion
from referrals.domain.tiers import Tier
from referrals.services import queries
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock


@pytest.fixture
def seeded(store: MemoryStore, clock: FixedClock, program: RuleVersion) -> MemoryStore:
    code = enroll(store, clock, "alice").referrer.code
    for i in range(7):
        sign_up(store, clock, program, f"u{i}", code)
    return store


def test_stats_sum_rewards_and_point_at_the_next_tier(
    seeded: MemoryStore, program: RuleVersion
) -> None:
    stats = queries.referrer_stats(seeded, FixedClock(), program, "alice")
    assert stats.referrer.referral_count == 7
    assert stats.earnings.payable_cents == 4 * 1000 + 3 * 1500
    assert stats.earnings.paid_cents == 0
    assert stats.next_tier == Tier(10, 2000)


def test_stats_of_unknown_referrer(store: MemoryStore, program: RuleVersion) -> None:
    with pytest.raises(NotFound):
        queries.referrer_stats(store, FixedClock(), program, "nobody")


def test_pages_walk_every_referral_once_in_ordinal_order(seeded: MemoryStore) -> None:
    seen, cursor = [], None
    while True:
        page = queries.referrals_of(seeded, "alice", 3, cursor)
        seen += [r.ordinal for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(range(1, 8))


def test_last_full_page_has_no_next_cursor(seeded: MemoryStore) -> None:
    assert queries.referrals_of(seeded, "alice", 7, None).next_cursor is None


def test_search_filters_and_pages_by_id(seeded: MemoryStore) -> None:
    first = queries.search_referrals(seeded, 4, None, ReferralStatus.PENDING, "alice")
    rest = queries.search_referrals(seeded, 4, first.next_cursor, ReferralStatus.PENDING, "alice")
    ids = [r.id for r in [*first.items, *rest.items]]
    assert len(ids) == 7 and ids == sorted(ids)
    assert queries.search_referrals(seeded, 50, None, ReferralStatus.PAID).items == []


@pytest.mark.parametrize("cursor", ["!!!", "", "AAAA", "z" * 100])
def test_bad_cursor_is_invalid_input(seeded: MemoryStore, cursor: str) -> None:
    with pytest.raises(InvalidInput):
        queries.referrals_of(seeded, "alice", 10, cursor)


@pytest.mark.parametrize("limit", [0, 501])
def test_limit_out_of_range(seeded: MemoryStore, limit: int) -> None:
    with pytest.raises(InvalidInput):
        queries.search_referrals(seeded, limit, None)
