import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.domain.errors import InvalidInput
from referrals.domain.tiers import DEFAULT_TIERS, Tier, TierSchedule


@pytest.mark.parametrize(
    ("ordinal", "cents"),
    [(1, 1000), (4, 1000), (5, 1500), (9, 1500), (10, 2000), (24, 2000), (25, 2500), (1000, 2500)],
)
def test_default_schedule_boundaries(ordinal: int, cents: int) -> None:
    assert DEFAULT_TIERS.reward_for(ordinal) == cents


def test_custom_schedule_prices_by_highest_threshold_reached() -> None:
    schedule = TierSchedule.parse("1:500, 3:700, 100:5000")
    assert [schedule.reward_for(n) for n in (1, 2, 3, 99, 100)] == [500, 500, 700, 700, 5000]


def test_next_tier_is_the_first_threshold_above_the_count() -> None:
    assert DEFAULT_TIERS.next_tier(0) == Tier(1, 1000)
    assert DEFAULT_TIERS.next_tier(4) == Tier(5, 1500)
    assert DEFAULT_TIERS.next_tier(5) == Tier(10, 2000)
    assert DEFAULT_TIERS.next_tier(25) is None


@pytest.mark.parametrize(
    "text", ["", "1", "1:abc", "2:1000", "1:1000,1:2000", "1:1000,5:900,3:100", "1:-5", "x:1"]
)
def test_invalid_schedules_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        TierSchedule.parse(text)


def test_schedule_round_trips_through_its_text_form() -> None:
    assert TierSchedule.parse(str(DEFAULT_TIERS)) == DEFAULT_TIERS


def test_ordinal_zero_is_not_a_referral() -> None:
    with pytest.raises(ValueError, match="ordinals start at 1"):
        DEFAULT_TIERS.reward_for(0)


@given(
    thresholds=st.sets(st.integers(2, 10_000), max_size=8),
    rewards=st.lists(st.integers(0, 10**7), min_size=9, max_size=9),
    ordinal=st.integers(1, 20_000),
)
def test_reward_is_that_of_the_highest_threshold_not_above_the_ordinal(
    thresholds: set[int], rewards: list[int], ordinal: int
) -> None:
    tiers = tuple(Tier(t, c) for t, c in zip([1, *sorted(thresholds)], rewards, strict=False))
    schedule = TierSchedule(tiers)
    expected = max((t for t in tiers if t.threshold <= ordinal), key=lambda t: t.threshold)
    assert schedule.reward_for(ordinal) == expected.reward_cents
