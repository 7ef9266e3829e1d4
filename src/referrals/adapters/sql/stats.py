"""The dashboard's aggregates on SQL: every query is bounded by an index range.

- A time window of referrals is a range of the primary key: ids are ULIDs, which
  sort by the time they were minted (`first_id_at`). `created_at` is filtered on
  the rows the range yields, since an import's `created_at` is older than its id.
- Unpaid money walks `ix_referrals_status_id` and `ix_rewards_status_id` for the
  unsettled states only: a monthly run pays them, so they hold about a month.

No query of the dashboard reads every referral; tests/adapters/test_sql_stats_plans.py
holds the query plans to that on SQLite and PostgreSQL.
"""

from collections import defaultdict
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
    select(_DAY, referrals.c.reward_cents, referrals.c.status, func.count())
    .where(*_IN_WINDOW)
    .group_by(_DAY, referrals.c.reward_cents, referrals.c.status)
)
_UNEARNED = sorted(status.value for status in UNEARNED)
_EARNED_CENTS = func.sum(
    case((referrals.c.status.in_(_UNEARNED), 0), else_=referrals.c.reward_cents)
)
_UNSETTLED = [status.value for status in UNSETTLED]
_UNPAID = union_all(
    select(referrals.c.status, func.count(), func.sum(referrals.c.reward_cents))
    .where(referrals.c.status.in_(_UNSETTLED))
    .group_by(referrals.c.status),
    select(rewards.c.status, func.count(), func.sum(rewards.c.cents))
    .where(rewards.c.status.in_(_UNSETTLED))
    .group_by(rewards.c.status),
)


class SqlStats(Repository):
    def signups(self, since: datetime) -> Sequence[SignupTally]:
        rows = self._execute(_SIGNUPS, _window(since))
        return [
            SignupTally(_day(int(day)), int(cents), ReferralStatus(status), int(count))
            for day, cents, status, count in rows
        ]

    def top_referrers(self, since: datetime, limit: int) -> Sequence[ReferrerTally]:
        count = func.count().label("referrals")
        query = (
            select(referrals.c.referrer_id, count, _EARNED_CENTS)
            .where(*_IN_WINDOW)
            .group_by(referrals.c.referrer_id)
            .order_by(count.desc(), self._byte_order(referrals.c.referrer_id))
            .limit(limit)
        )
        rows = self._execute(query, _window(since))
        return [ReferrerTally(user, int(n), int(cents or 0)) for user, n, cents in rows]

    def unsettled(self) -> Sequence[StateTally]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for status, count, cents in self._execute(_UNPAID):
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
