"""The funnel's arithmetic: the stores' counts added up per day and referrer, every day
of the window present, rates, K-factor and cost per signup."""

from datetime import date

from referrals.domain.clicks import ClickCount
from referrals.domain.funnel import ReferralDay, funnel
from referrals.domain.sales import SaleTally

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def test_each_stage_adds_up_per_day_and_per_referrer() -> None:
    result = funnel(
        "USD",
        D1,
        D3,
        clicks=[ClickCount(D1, "ann", 8), ClickCount(D2, "ann", 2), ClickCount(D2, "bob", 5)],
        referrals=[ReferralDay(D1, "ann", 2, 2000), ReferralDay(D2, "bob", 1, 0)],
        sales=[
            SaleTally(
                D2,
                "ann",
                sales=2,
                revenue_minor=10_000,
                refunds=1,
                refunded_minor=2_500,
                purchases=1,
                share_minor=750,
            ),
            SaleTally(D2, None, sales=1, revenue_minor=4_000, purchases=1),
        ],
        limit=10,
    )
    assert [d.day for d in result.days] == [D1, D2]
    day1, day2 = (d.stages for d in result.days)
    assert (day1.clicks, day1.signups, day1.rewards_minor) == (8, 2, 2000)
    assert (day2.clicks, day2.signups, day2.conversions, day2.revenue_minor) == (7, 1, 1, 7_500)
    assert day2.rewards_minor == 750  # the share kept after the refund
    total = result.total
    assert (total.clicks, total.signups, total.conversions) == (15, 3, 1)
    assert (total.revenue_minor, total.rewards_minor) == (7_500, 2_750)
    assert total.signup_rate == 3 / 15 and total.conversion_rate == 1 / 3
    assert (result.unattributed_sales, result.unattributed_revenue_minor) == (1, 4_000)
    assert [(r.referrer_id, r.stages.signups, r.stages.clicks) for r in result.referrers] == [
        ("ann", 2, 10),
        ("bob", 1, 5),
    ]
    assert result.active_referrers == 2 and result.k_factor == 1.5
    assert result.cost_per_signup_minor == 2_750 // 3


def test_a_quiet_window_has_every_day_and_no_rates() -> None:
    result = funnel("EUR", D1, D3, clicks=[], referrals=[], sales=[], limit=5)
    assert [d.stages.clicks for d in result.days] == [0, 0]
    assert result.total.signup_rate is None and result.total.conversion_rate is None
    assert result.k_factor is None and result.cost_per_signup_minor is None
    assert result.currency == "EUR"


def test_the_referrers_listed_are_the_limits_most_signups_then_clicks_then_id() -> None:
    result = funnel(
        "USD",
        D1,
        D2,
        clicks=[ClickCount(D1, "cat", 9), ClickCount(D1, "bob", 1)],
        referrals=[ReferralDay(D1, "ann", 1, 0), ReferralDay(D1, "bob", 1, 0)],
        sales=[],
        limit=2,
    )
    assert [r.referrer_id for r in result.referrers] == ["bob", "ann"]
    assert result.referrer_count == 3
