"""What the admin dashboard's overview shows, gathered in one read from the stats port.

Every figure comes from an index range of the store (see StatsRepository), so the
overview costs about the same however many referrals there are but for the last
30 days' own; money stays integer cents until a page formats it.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from referrals.domain.model import (
    UNEARNED,
    ReferrerTally,
    RunStatus,
    StateTally,
)
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Clock, Store

WINDOW_DAYS = 30
TOP_REFERRERS = 10


@dataclass(frozen=True, slots=True)
class TierTotal:
    """Rewards earned at one amount in the window; `tier` is the schedule's tier of that
    amount, None for an amount the schedule no longer pays."""

    reward_cents: int
    tier: Tier | None
    count: int
    cents: int


@dataclass(frozen=True, slots=True)
class Overview:
    now: datetime
    since: datetime  # the first instant of the window: midnight UTC, WINDOW_DAYS ago
    days: list[tuple[date, int]]  # signups per UTC day, oldest first, every day present
    tiers: list[TierTotal]  # by amount
    unsettled: Sequence[StateTally]  # owed, not paid yet, by state
    paid_cents: int  # what completed payout runs paid (net of clawbacks)
    paid_runs: int
    top: Sequence[ReferrerTally]
    program: str | None  # the program the figures are of; None: every program's

    @property
    def signups(self) -> int:
        return sum(count for _, count in self.days)

    @property
    def unpaid_cents(self) -> int:
        """What is owed and not paid: an awaiting reward is owed only once converted."""
        return sum(state.cents for state in self.unsettled if state.status not in UNEARNED)


def overview(
    store: Store, clock: Clock, tiers: TierSchedule, program: str | None = None
) -> Overview:
    """The last WINDOW_DAYS of `program` (every program's if None), its rewards named by
    the tiers of `tiers`. What payout runs paid is every program's: a run pays them all."""
    now = clock.now()
    first_day = now.astimezone(UTC).date() - timedelta(days=WINDOW_DAYS - 1)
    since = datetime.combine(first_day, time(), UTC)
    with store.read() as uow:
        tallies = uow.stats.signups(since, program=program)
        top = uow.stats.top_referrers(since, TOP_REFERRERS, program=program)
        unsettled = uow.stats.unsettled(program=program)
        runs = uow.payouts.list()
    per_day: Counter[date] = Counter()
    per_amount: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for tally in tallies:
        per_day[tally.day] += tally.count
        if tally.status not in UNEARNED:
            per_amount[tally.reward_cents][0] += tally.count
            per_amount[tally.reward_cents][1] += tally.count * tally.reward_cents
    completed = [run for run in runs if run.status is RunStatus.COMPLETED]
    return Overview(
        now=now,
        since=since,
        days=[(day, per_day[day]) for day in _days(first_day, WINDOW_DAYS)],
        tiers=[
            TierTotal(cents, _tier_paying(tiers, cents), *per_amount[cents])
            for cents in sorted(per_amount)
        ],
        unsettled=unsettled,
        paid_cents=sum(run.total_cents for run in completed),
        paid_runs=len(completed),
        top=top,
        program=program,
    )


def _days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]


def _tier_paying(schedule: TierSchedule, cents: int) -> Tier | None:
    return next((tier for tier in schedule.tiers if tier.reward_cents == cents), None)
