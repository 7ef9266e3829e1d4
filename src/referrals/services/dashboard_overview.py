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
    UNSETTLED,
    ReferralStatus,
    RunStatus,
)
from referrals.domain.money import DEFAULT_CURRENCY
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.payout_reports import currencies

WINDOW_DAYS = 30
TOP_REFERRERS = 10

# Amounts in several currencies, one per currency, sorted: (currency, minor units).
Amounts = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class TierTotal:
    """Rewards earned at one amount in the window; `tier` is the schedule's tier of that
    amount, None for an amount the schedule no longer pays."""

    reward_cents: int
    tier: Tier | None
    count: int
    cents: int
    currency: str = DEFAULT_CURRENCY  # of the programs that paid it: amounts are its minor units


@dataclass(frozen=True, slots=True)
class StateTotal:
    """The entries in one unsettled state in one currency, and their sum (a clawback
    counts negative)."""

    status: ReferralStatus
    count: int
    cents: int
    currency: str = DEFAULT_CURRENCY


@dataclass(frozen=True, slots=True)
class TopReferrer:
    referrer_id: str
    referrals: int  # in the window, every program's (or the program's)
    earned: Amounts  # per currency (UNEARNED aside)


@dataclass(frozen=True, slots=True)
class Overview:
    now: datetime
    since: datetime  # the first instant of the window: midnight UTC, WINDOW_DAYS ago
    days: list[tuple[date, int]]  # signups per UTC day, oldest first, every day present
    tiers: list[TierTotal]  # by currency, then amount
    unsettled: Sequence[StateTotal]  # owed, not paid yet, by currency, then state
    paid: Amounts  # what completed payout runs paid (net of clawbacks), per currency
    paid_runs: int
    top: Sequence[TopReferrer]
    program: str | None  # the program the figures are of; None: every program's

    @property
    def signups(self) -> int:
        return sum(count for _, count in self.days)

    @property
    def unpaid(self) -> Amounts:
        """What is owed and not paid, per currency: an awaiting reward is owed only once
        converted."""
        owed: dict[str, int] = defaultdict(int)
        for state in self.unsettled:
            if state.status not in UNEARNED:
                owed[state.currency] += state.cents
        return tuple(sorted(owed.items()))


def overview(
    store: Store, clock: Clock, tiers: TierSchedule, program: str | None = None
) -> Overview:
    """The last WINDOW_DAYS of `program` (every program's if None), its rewards named by
    the tiers of `tiers`. What payout runs paid is every program's: a run pays them all.

    Money is summed per currency, never across: every program's figures, when programs
    are in several currencies, are read program by program and summed per currency.
    """
    now = clock.now()
    first_day = now.astimezone(UTC).date() - timedelta(days=WINDOW_DAYS - 1)
    since = datetime.combine(first_day, time(), UTC)
    per_day: Counter[date] = Counter()
    per_amount: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    owed: dict[tuple[str, ReferralStatus], list[int]] = defaultdict(lambda: [0, 0])
    with store.read() as uow:
        scopes = _scopes(currencies(uow), program)
        for scope, currency in scopes:
            for tally in uow.stats.signups(since, program=scope):
                per_day[tally.day] += tally.count
                if tally.status not in UNEARNED:
                    per_amount[currency, tally.reward_cents][0] += tally.count
                    per_amount[currency, tally.reward_cents][1] += tally.count * tally.reward_cents
            for state in uow.stats.unsettled(program=scope):
                owed[currency, state.status][0] += state.count
                owed[currency, state.status][1] += state.cents
        top = _top(uow, scopes, since, now)
        runs = uow.payouts.list()
    paid: dict[str, int] = defaultdict(int)
    completed = [run for run in runs if run.status is RunStatus.COMPLETED]
    for run in completed:
        for total in run.totals:
            paid[total.currency] += total.total_cents
    order = {status: n for n, status in enumerate(UNSETTLED)}
    return Overview(
        now=now,
        since=since,
        days=[(day, per_day[day]) for day in _days(first_day, WINDOW_DAYS)],
        tiers=[
            TierTotal(cents, _tier_paying(tiers, cents), count, total, currency)
            for (currency, cents), (count, total) in sorted(per_amount.items())
        ],
        unsettled=[
            StateTotal(status, count, cents, currency)
            for (currency, status), (count, cents) in sorted(
                owed.items(), key=lambda item: (item[0][0], order[item[0][1]])
            )
        ],
        paid=tuple(sorted(paid.items())),
        paid_runs=len(completed),
        top=top,
        program=program,
    )


def _scopes(known: dict[str, str], program: str | None) -> list[tuple[str | None, str]]:
    """What to read the stats of, each with its currency: the program; or every program
    at once when they share a currency; or else each program on its own."""
    if program is not None:
        return [(program, known.get(program, DEFAULT_CURRENCY))]
    kinds = set(known.values()) or {DEFAULT_CURRENCY}
    if len(kinds) == 1:
        return [(None, kinds.pop())]
    return [(scope, currency) for scope, currency in sorted(known.items())]


def _top(
    uow: UnitOfWork, scopes: list[tuple[str | None, str]], since: datetime, now: datetime
) -> list[TopReferrer]:
    """The top referrers by referrals; what each earned, per currency. Across programs in
    several currencies, ranked by their referrals in every program, and their earnings
    read from each program's days of the window (the ranking's sum mixes currencies)."""
    if len(scopes) == 1:
        scope, currency = scopes[0]
        ranked = uow.stats.top_referrers(since, TOP_REFERRERS, program=scope)
        return [
            TopReferrer(row.referrer_id, row.referrals, ((currency, row.earned_cents),))
            for row in ranked
        ]
    ranked = uow.stats.top_referrers(since, TOP_REFERRERS)
    wanted = {row.referrer_id for row in ranked}
    earned: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    until = now + timedelta(days=1)  # every referral made so far
    for scope, currency in scopes:
        if scope is None:
            continue  # never with several scopes: each is a program
        for day in uow.stats.referral_days(scope, since, until):
            if day.referrer_id in wanted:
                earned[day.referrer_id][currency] += day.earned_cents
    return [
        TopReferrer(
            row.referrer_id,
            row.referrals,
            tuple(sorted((c, v) for c, v in earned[row.referrer_id].items() if v)),
        )
        for row in ranked
    ]


def _days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]


def _tier_paying(schedule: TierSchedule, cents: int) -> Tier | None:
    return next((tier for tier in schedule.tiers if tier.reward_cents == cents), None)
