"""The dashboard's aggregates on SQL: every query is bounded by an index range.

- A time window of referrals is a range of the primary key: ids are ULIDs, which
  sort by the time they were minted (`first_id_at`). `created_at` is filtered on
  the rows the range yields, since an import's `created_at` is older than its id.
- Unpaid money walks `ix_referrals_status_id` and `ix_rewards_status_id` for the
  unsettled states only: a monthly run pays them, so they hold about a month.

No query of the dashboard reads every referral; tests/adapters/test_sql_stats_plans.py
holds the query plans to that on SQLite and PostgreSQL.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    bindparam,
    case,
    func,
    literal_column,
    select,
    union_all,
)

from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import referrals, rewards
from referrals.adapters.times import EPOCH
from referrals.domain.funnel import ReferralDay
from referrals.domain.model import (
    ID_SLACK,
    UNEARNED,
    UNSETTLED,
    ReferralStatus,
    ReferrerTally,
    SignupTally,
    StateTally,
    first_id_at,
)

MICROS_PER_DAY = 86_400_000_000
# A literal, not a bound parameter: PostgreSQL matches a GROUP BY expression to the
# select's only if both are the same text.
_DAY = (referrals.c.created_at // literal_column(str(MICROS_PER_DAY), BigInteger)).label("day")
# The greatest ULID (48 bits of milliseconds, 80 random bits). Bounding the id range on
# both sides is for SQLite's planner: with one side open, it would rather walk all of
# ix_referrals_referrer_status (in referrer order, sparing the leaderboard a sort) than
# the primary key's range.
LAST_ID = "7" + "Z" * 25
_IN_WINDOW = (
    referrals.c.id.between(bindparam("first_id"), LAST_ID),
    referrals.c.created_at >= bindparam("since"),
)
_SIGNUPS = (
    select(_DAY, referrals.c.reward_cents, referrals.c.status, referrals.c.program_id, func.count())
    .where(*_IN_WINDOW)
    .group_by(_DAY, referrals.c.reward_cents, referrals.c.status, referrals.c.program_id)
)
_UNEARNED = sorted(status.value for status in UNEARNED)
_EARNED_CENTS = func.sum(
    case((referrals.c.status.in_(_UNEARNED), 0), else_=referrals.c.reward_cents)
)
# A program's days by referrer: grouped by program, as the class's docstring says why.
_REFERRAL_DAYS = (
    select(_DAY, referrals.c.referrer_id, referrals.c.program_id, func.count(), _EARNED_CENTS)
    .where(*_IN_WINDOW, referrals.c.created_at < bindparam("until"))
    .group_by(_DAY, referrals.c.referrer_id, referrals.c.program_id)
)
_UNSETTLED = [status.value for status in UNSETTLED]
_UNPAID = union_all(
    *(
        select(table.c.status, table.c.program_id, func.count(), func.sum(cents))
        .where(table.c.status.in_(_UNSETTLED))
        .group_by(table.c.status, table.c.program_id)
        for table, cents in ((referrals, referrals.c.reward_cents), (rewards, rewards.c.cents))
    )
)


class SqlStats(Repository):
    """A program's figures are its groups: the program is grouped by, never filtered on
    in SQL, since a filter on `program_id` would tempt the planner (SQLite's without
    statistics) into the program's whole index rather than the window's id range."""

    def signups(self, since: datetime, *, program: str | None = None) -> Sequence[SignupTally]:
        counts: Counter[tuple[int, int, str]] = Counter()
        for day, cents, status, in_program, count in self._execute(_SIGNUPS, _window(since)):
            if program in (None, in_program):
                counts[int(day), int(cents), status] += int(count)
        return [
            SignupTally(_day(day), cents, ReferralStatus(status), count)
            for (day, cents, status), count in counts.items()
        ]

    def top_referrers(
        self, since: datetime, limit: int, *, program: str | None = None
    ) -> Sequence[ReferrerTally]:
        count = func.count().label("referrals")
        query = select(referrals.c.referrer_id, count, _EARNED_CENTS).where(*_IN_WINDOW)
        ranking = (count.desc(), self._byte_order(referrals.c.referrer_id))
        if program is None:
            query = query.group_by(referrals.c.referrer_id).order_by(*ranking).limit(limit)
            rows = self._execute(query, _window(since))
            return [ReferrerTally(user, int(n), int(cents or 0)) for user, n, cents in rows]
        # The program's groups rank first, so the first `limit` hold all of its top ones.
        theirs = referrals.c.program_id == bindparam("program")
        query = (
            query.add_columns(referrals.c.program_id)
            .group_by(referrals.c.referrer_id, referrals.c.program_id)
            .order_by(case((theirs, 0), else_=1), *ranking)
            .limit(limit)
        )
        rows = self._execute(query, _window(since) | {"program": program})
        return [
            ReferrerTally(user, int(n), int(cents or 0))
            for user, n, cents, in_program in rows
            if in_program == program
        ]

    def referral_days(
        self, program: str, since: datetime, until: datetime
    ) -> Sequence[ReferralDay]:
        found = self._execute(_REFERRAL_DAYS, _window(since) | {"until": until})
        return [
            ReferralDay(_day(int(day)), user, int(n), int(cents or 0))
            for day, user, in_program, n, cents in found
            if in_program == program
        ]

    def unsettled(self, *, program: str | None = None) -> Sequence[StateTally]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for status, in_program, count, cents in self._execute(_UNPAID):
            if program in (None, in_program):
                totals[status][0] += int(count)
                totals[status][1] += int(cents or 0)
        return [
            StateTally(ReferralStatus(status), *totals[status.value])
            for status in UNSETTLED
            if status.value in totals
        ]


def _window(since: datetime) -> dict[str, Any]:
    return {"first_id": first_id_at(since - ID_SLACK), "since": since}


def _day(days_since_epoch: int) -> date:
    return (EPOCH + timedelta(days=days_since_epoch)).date()
