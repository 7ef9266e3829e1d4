from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.domain.errors import InvalidInput
from referrals.domain.sales import (
    Sale,
    SaleKind,
    ShareTier,
    ShareTiers,
    add_months,
    share_of,
    within_share_months,
)

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)


def sale(amount: int, bps: int, ceiling: int = 0, awarded: int | None = None) -> Sale:
    full = share_of(amount, bps, ceiling)
    return Sale(
        "in_1",
        "bob",
        amount,
        "USD",
        T0,
        SaleKind.PURCHASE,
        T0,
        share_bps=bps,
        share_ceiling_minor=ceiling,
        awarded_minor=full if awarded is None else awarded,
    )


def test_a_share_is_rounded_down_and_capped_by_the_ceiling() -> None:
    assert share_of(999, 1000) == 99
    assert share_of(12_345, 1234) == 1523  # 1523.373
    assert share_of(100_000, 1000, ceiling_minor=5000) == 5000
    assert share_of(0, 10_000) == 0 and share_of(7, 10_000) == 7


def test_the_reversal_is_the_difference_of_the_shares_kept() -> None:
    s = sale(999, 1000)  # shares 99
    assert s.reversal(1) == 0  # 998 still shares 99
    assert s.reversal(10) == 1  # 989 shares 98
    assert s.reversal(999) == 99


def test_a_share_cut_by_the_caps_is_reversed_only_below_what_was_awarded() -> None:
    s = sale(10_000, 1000, awarded=300)  # the caps let 300 of 1000 through
    assert s.reversal(5000) == 0  # the half kept still shares 500 > 300
    assert s.reversal(8000) == 100  # 2000 kept shares 200
    assert s.reversal(10_000) == 300


@given(
    amount=st.integers(0, 10**9),
    bps=st.integers(0, 10_000),
    ceiling=st.sampled_from([0, 1, 999, 10**6]),
    parts=st.lists(st.integers(1, 10**9), max_size=8),
)
def test_any_refunds_leave_exactly_the_share_of_what_was_kept(
    amount: int, bps: int, ceiling: int, parts: list[int]
) -> None:
    s = sale(amount, bps, ceiling)
    paid = s.awarded_minor
    for part in parts:
        part = min(part, s.net_minor)
        taken = s.reversal(part)
        assert taken >= 0
        paid -= taken
        s = replace(s, refunded_minor=s.refunded_minor + part)
        assert 0 <= paid == share_of(s.net_minor, bps, ceiling)


def test_share_tiers_follow_the_reward_tiers_rules() -> None:
    tiers = ShareTiers((ShareTier(1, 500), ShareTier(10, 1000)))
    assert tiers.tier_of(0) is None
    assert tiers.tier_of(9) == ShareTier(1, 500) and tiers.tier_of(10) == ShareTier(10, 1000)
    assert not ShareTiers() and not ShareTiers((ShareTier(1, 0),))


@pytest.mark.parametrize(
    "tiers",
    [
        (ShareTier(2, 500),),
        (ShareTier(1, 500), ShareTier(1, 600)),
        (ShareTier(1, 500), ShareTier(5, 600), ShareTier(3, 700)),
        (ShareTier(1, 10_001),),
        (ShareTier(1, -1),),
    ],
)
def test_bad_share_tiers_are_refused_naming_the_field(tiers: tuple[ShareTier, ...]) -> None:
    with pytest.raises(InvalidInput) as raised:
        ShareTiers(tiers)
    assert raised.value.field == "share.tiers"


def test_months_are_calendar_months_ending_on_the_last_day_when_short() -> None:
    assert add_months(T0, 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert add_months(T0, 13) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert add_months(datetime(2027, 11, 15, tzinfo=UTC), 3) == datetime(2028, 2, 15, tzinfo=UTC)


def test_sales_earn_within_the_share_months_of_the_signup() -> None:
    assert within_share_months(T0, T0 + timedelta(days=27), 1)
    assert not within_share_months(T0, datetime(2026, 2, 28, 12, tzinfo=UTC), 1)
    assert within_share_months(T0, T0 + timedelta(days=3650), 0)  # for life
    assert within_share_months(T0, T0 - timedelta(hours=1), 1)  # paid at checkout, then signed up
    assert not within_share_months(T0, T0 - timedelta(days=2), 0)
