"""The dashboard's aggregates on DynamoDB: Queries of index ranges, never a Scan.

- A time window of referrals is a key range of the `by_id` index (`kind`, `id`):
  ids are ULIDs, in the order they were minted. `created_at` is filtered on the
  items the range yields, since an import's `created_at` is older than its id.
- Unpaid money reads the `by_status` partitions of the unsettled states only
  (referrals and entries alike), which a monthly run empties; what runs still in
  progress hold is read from their `by_period` partitions (run_states).

A Query reads (and is billed for) whole items, whatever it projects: the window of
30 days costs about 30 days of referrals in read units per overview, so the
dashboard caches an overview for a few seconds rather than read it per view.
"""

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

from boto3.dynamodb.conditions import Attr, Key

from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.items import program_of
from referrals.adapters.dynamodb.run_states import STATE_ATTRIBUTES, RunStates
from referrals.adapters.times import from_micros, to_micros
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

# (created_at in microseconds, reward cents, status, referrer id, program) of one referral.
Row = tuple[int, int, ReferralStatus, str, str]


class DynamoStats:
    def __init__(self, tables: Tables, runs: RunStates) -> None:
        self._tables = tables
        self._runs = runs
        # One unit of work reads a window once, for both the days and the leaderboard.
        self._windows: dict[datetime, list[Row]] = {}

    def signups(self, since: datetime, *, program: str | None = None) -> Sequence[SignupTally]:
        counts = Counter(
            (from_micros(created).astimezone(UTC).date(), cents, status)
            for created, cents, status, _, in_program in self._window(since)
            if program in (None, in_program)
        )
        return [SignupTally(*key, count) for key, count in counts.items()]

    def top_referrers(
        self, since: datetime, limit: int, *, program: str | None = None
    ) -> Sequence[ReferrerTally]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _, cents, status, user, in_program in self._window(since):
            if program not in (None, in_program):
                continue
            totals[user][0] += 1
            totals[user][1] += 0 if status in UNEARNED else cents
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0].encode()))
        return [ReferrerTally(user, n, cents) for user, (n, cents) in ranked[:limit]]

    def referral_days(
        self, program: str, since: datetime, until: datetime
    ) -> Sequence[ReferralDay]:
        totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
        end = to_micros(until)
        for created, cents, status, user, in_program in self._window(since):
            if created < end and in_program == program:
                cell = totals[from_micros(created).astimezone(UTC).date(), user]
                cell[0] += 1
                cell[1] += 0 if status in UNEARNED else cents
        return [ReferralDay(day, user, n, cents) for (day, user), (n, cents) in totals.items()]

    def unsettled(self, *, program: str | None = None) -> Sequence[StateTally]:
        tallies = []
        for status in UNSETTLED:
            count = cents = 0
            project = f"reward_cents, program_id, {STATE_ATTRIBUTES}"
            found = (
                self._runs.in_running_runs(project)
                if status is ReferralStatus.PROCESSING
                else self._tables.query(
                    self._tables.main,
                    Key("status_pk").eq(status.value),
                    index="by_status",
                    project=project,
                )
            )
            for item in found:
                if program not in (None, program_of(item)):
                    continue
                count += 1
                cents += int(item["reward_cents"])
            if count:
                tallies.append(StateTally(status, count, cents))
        return tallies

    def _window(self, since: datetime) -> list[Row]:
        if since not in self._windows:
            self._windows[since] = list(self._read_window(since))
        return self._windows[since]

    def _read_window(self, since: datetime) -> Iterator[Row]:
        items = self._tables.query(
            self._tables.main,
            Key("kind").eq("REFERRAL") & Key("id").gte(first_id_at(since - ID_SLACK)),
            index="by_id",
            filter=Attr("created_at").gte(to_micros(since)),
            project=f"created_at, reward_cents, referrer_id, program_id, {STATE_ATTRIBUTES}",
        )
        for item in items:
            yield (
                int(item["created_at"]),
                int(item["reward_cents"]),
                self._runs.status(item),
                item["referrer_id"],
                program_of(item),
            )
