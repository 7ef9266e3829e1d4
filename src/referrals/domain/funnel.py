"""A program's funnel: clicks -> signups -> conversions -> revenue -> rewards, per UTC
day and per referrer, from the records each stage leaves (pure: the stores count, this
adds up).

- **clicks**: clicks on the program's tracked links (bots and rate-limited ones were
  never recorded), by the day of the click;
- **signups**: the program's referrals, by the day of the signup;
- **conversions**: referred customers' purchases (attributed sales of kind
  `purchase`; a renewal is revenue, not a new customer), by the day of the sale;
- **revenue**: attributed sales less their refunds, each by the day it occurred, in
  integer minor units of the program's currency;
- **rewards**: what the referrers earned: each referral's reward, by the day of its
  signup (one awaiting a conversion, rejected or reversed earns nothing), and each
  sale's revenue share less what refunds took back, by the day of the sale or refund.

Unattributed sales (a user with no referral in the program) are counted apart: they
are what the program did not bring. Rates are ratios of counts, None where the stage
before counted nothing. The K-factor is the invites each referrer sent times the share
of invites that became users: (clicks / active referrers) x (signups / clicks), i.e.
signups per active referrer, where an active referrer had a click or a signup in the
window. The cost per acquired user is the rewards divided by the signups, rounded
down to a minor unit.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from referrals.domain.clicks import ClickCount
from referrals.domain.sales import SaleTally


@dataclass(frozen=True, slots=True)
class ReferralDay:
    """One referrer's referrals signed up on one UTC day in a program, and what they
    earned (nothing for one awaiting a conversion, rejected, reversed or clawed back)."""

    day: date
    referrer_id: str
    signups: int
    earned_cents: int


@dataclass(slots=True)
class Stages:
    """The funnel's five figures for a day, a referrer or the whole window."""

    clicks: int = 0
    signups: int = 0
    conversions: int = 0
    revenue_minor: int = 0
    rewards_minor: int = 0

    def add(self, other: "Stages") -> None:
        self.clicks += other.clicks
        self.signups += other.signups
        self.conversions += other.conversions
        self.revenue_minor += other.revenue_minor
        self.rewards_minor += other.rewards_minor

    @property
    def signup_rate(self) -> float | None:
        """Signups per click."""
        return _ratio(self.signups, self.clicks)

    @property
    def conversion_rate(self) -> float | None:
        """Conversions per signup."""
        return _ratio(self.conversions, self.signups)


@dataclass(frozen=True, slots=True)
class FunnelDay:
    day: date
    stages: Stages


@dataclass(frozen=True, slots=True)
class FunnelReferrer:
    referrer_id: str
    stages: Stages


@dataclass(frozen=True, slots=True)
class Funnel:
    currency: str  # the program's: every amount is in its minor units
    start: date  # the first UTC day
    end: date  # the day after the last
    days: tuple[FunnelDay, ...]  # every day of the window, oldest first
    referrers: tuple[FunnelReferrer, ...]  # the `limit` with the most signups, then clicks
    total: Stages
    active_referrers: int  # with a click or a signup in the window
    unattributed_sales: int = 0
    unattributed_revenue_minor: int = 0
    referrer_count: int = field(default=0)  # referrers with any figure, listed or not

    @property
    def k_factor(self) -> float | None:
        """Invites per active referrer x signups per invite: signups per active referrer."""
        return _ratio(self.total.signups, self.active_referrers)

    @property
    def cost_per_signup_minor(self) -> int | None:
        """What the rewards cost per acquired user, rounded down."""
        if not self.total.signups:
            return None
        return self.total.rewards_minor // self.total.signups


def funnel(
    currency: str,
    start: date,
    end: date,
    clicks: Iterable[ClickCount],
    referrals: Iterable[ReferralDay],
    sales: Iterable[SaleTally],
    limit: int,
) -> Funnel:
    """Add up the stores' counts of the days [start, end) into the funnel; the
    referrers listed are the `limit` with the most signups, then clicks, then id."""
    per_day: dict[date, Stages] = {}
    per_referrer: dict[str, Stages] = {}

    def cell(day: date, referrer_id: str) -> tuple[Stages, Stages]:
        return (
            per_day.setdefault(day, Stages()),
            per_referrer.setdefault(referrer_id, Stages()),
        )

    for click in clicks:
        for stages in cell(click.day, click.referrer_id):
            stages.clicks += click.clicks
    for referral in referrals:
        for stages in cell(referral.day, referral.referrer_id):
            stages.signups += referral.signups
            stages.rewards_minor += referral.earned_cents
    unattributed_sales = unattributed_revenue = 0
    for tally in sales:
        if tally.referrer_id is None:
            unattributed_sales += tally.sales
            unattributed_revenue += tally.revenue_minor - tally.refunded_minor
            continue
        for stages in cell(tally.day, tally.referrer_id):
            stages.conversions += tally.purchases
            stages.revenue_minor += tally.revenue_minor - tally.refunded_minor
            stages.rewards_minor += tally.share_minor
    total = Stages()
    for stages in per_day.values():
        total.add(stages)
    active = sum(1 for s in per_referrer.values() if s.clicks or s.signups)
    ranked = sorted(
        per_referrer.items(), key=lambda item: (-item[1].signups, -item[1].clicks, item[0])
    )
    days = tuple(
        FunnelDay(day, per_day.get(day, Stages()))
        for day in (start + timedelta(days=n) for n in range((end - start).days))
    )
    return Funnel(
        currency=currency,
        start=start,
        end=end,
        days=days,
        referrers=tuple(FunnelReferrer(r, s) for r, s in ranked[:limit]),
        total=total,
        active_referrers=active,
        unattributed_sales=unattributed_sales,
        unattributed_revenue_minor=unattributed_revenue,
        referrer_count=len(per_referrer),
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
