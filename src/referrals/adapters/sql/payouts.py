"""Payout runs on SQL: the lease, the assignment of rewards in bounded batches, the
carry-forward, the per-user lines streamed from the database, and the completion.

Every step is a conditional statement on the rows' states, so a reward moves to one
run only, and a run resumed after a crash computes the same lines from what is
assigned, never from memory.
"""

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.schema import CreateTable, DropTable

from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import payout_run_totals, payout_runs, referrals, rewards
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    CurrencyTotal,
    LineKind,
    Minimums,
    PayoutLine,
    PayoutRun,
    ReferralStatus,
    RewardKind,
    RunStatus,
    payout_floor,
)
from referrals.domain.run_totals import recorded_totals
from referrals.ports import LeaseLost

PENDING, PROCESSING, PAID = (
    ReferralStatus.PENDING.value,
    ReferralStatus.PROCESSING.value,
    ReferralStatus.PAID.value,
)
RUNNING, COMPLETED, FAILED = (
    RunStatus.RUNNING.value,
    RunStatus.COMPLETED.value,
    RunStatus.FAILED.value,
)
CLAWBACK = RewardKind.CLAWBACK.value

# The advisory lock serializing completions on PostgreSQL (any constant, the same in
# every process; migrate.py's PG_MIGRATION_LOCK is another).
PG_CHAIN_LOCK = 7_210_115

# Where a release keeps the users it carries forward, between the statements that
# release their referrals and their entries: each statement changes the totals the
# next would compute. A temporary table of this connection, dropped before returning.
_released = Table(
    "release_totals",
    MetaData(),
    Column("user_id", String(128), primary_key=True),
    Column("program_id", String(64), primary_key=True),
    Column("cents", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
_USER_AND_PROGRAM = itemgetter(0, 1)  # a line's key, in both grouped queries
# assign_batch's cursor once the referrals are walked: this prefix, then the last entry id.
_ENTRIES = "rewards:"


class SqlPayouts(Repository):
    def get(self, period: str) -> PayoutRun | None:
        row = self._execute(select(payout_runs).where(payout_runs.c.period == period)).first()
        return self._runs([row])[0] if row else None

    def list(self) -> Sequence[PayoutRun]:
        query = select(payout_runs).order_by(payout_runs.c.period.desc())
        return self._runs(self._execute(query))

    def last_completed(self) -> PayoutRun | None:
        query = (
            select(payout_runs)
            .where(payout_runs.c.status == COMPLETED)
            .order_by(payout_runs.c.completed_at.desc())
            .limit(1)
        )
        row = self._execute(query).first()
        return self._runs([row])[0] if row else None

    def completed_before(self, period: str) -> PayoutRun | None:
        query = (
            select(payout_runs)
            .where(payout_runs.c.period < period, payout_runs.c.status == COMPLETED)
            .order_by(payout_runs.c.period.desc())
            .limit(1)
        )
        row = self._execute(query).first()
        return self._runs([row])[0] if row else None

    def _runs(self, found: Iterable[Any]) -> Sequence[PayoutRun]:
        """The runs of `found` rows, with their totals per currency (one read for all:
        a run a month, a currency or a few each)."""
        runs = [rows.payout_run(row) for row in found]
        periods = [run.period for run in runs if run.status is RunStatus.COMPLETED]
        totals: dict[str, tuple[CurrencyTotal, ...]] = {}
        if periods:
            query = (
                select(payout_run_totals)
                .where(payout_run_totals.c.period.in_(periods))
                .order_by(payout_run_totals.c.period, payout_run_totals.c.currency)
            )
            for row in self._execute(query):
                total = CurrencyTotal(
                    row.currency,
                    row.referrer_count,
                    row.referral_count,
                    row.total_cents,
                    row.clawback_cents,
                    row.carried_forward_cents,
                )
                totals[row.period] = (*totals.get(row.period, ()), total)
        return [recorded_totals(run, totals.get(run.period, ())) for run in runs]

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        lease = {"lease_owner": owner, "lease_expires_at": until}
        taken = self._execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == period,
                payout_runs.c.status != COMPLETED,
                or_(
                    payout_runs.c.lease_expires_at.is_(None),
                    payout_runs.c.lease_expires_at < now,
                    payout_runs.c.lease_owner == owner,
                ),
            )
            .values(status=RUNNING, error=None, **lease)
        )
        if taken.rowcount == 1:
            return True
        if self.get(period) is not None:
            return False
        values = {
            "period": period,
            "status": RUNNING,
            "cutoff": cutoff,
            "started_at": now,
            **lease,
        }
        try:
            self._execute(insert(payout_runs), values)
        except Conflict:
            return False  # another process created the run first: it holds the lease
        return True

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        renewed = self._execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == period,
                payout_runs.c.lease_owner == owner,
                payout_runs.c.status == RUNNING,
            )
            .values(lease_expires_at=until)
        )
        return renewed.rowcount == 1

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        # Two walks by id, one per table: the referrals' own rewards, then the other
        # entries. The cursor is the last referral id, or _ENTRIES and the last entry
        # id once the referrals are done; a batch that finds fewer than `limit`
        # referrals fills up with entries, so a short batch means both are done.
        # The lease is not fenced here: the unit of work renewed it (under the row's
        # lock until it commits) before assigning.
        moved = 0
        if after is None or not after.startswith(_ENTRIES):
            moved, after, more = self._walk(referrals, period, cutoff, limit, after)
            if more:
                return moved, after
            after = _ENTRIES
        entries, last, _ = self._walk(
            rewards, period, cutoff, limit - moved, after.removeprefix(_ENTRIES) or None
        )
        return moved + entries, _ENTRIES + (last or "")

    def _walk(
        self, table: Table, period: str, cutoff: datetime, limit: int, after: str | None
    ) -> tuple[int, str | None, bool]:
        """Move up to `limit` of `table`'s eligible rows after `after` by id to `period`.

        Returns how many moved, the id it stopped at, and whether rows may be left.
        """
        moved = 0
        while moved < limit:
            wanted = limit - moved
            eligible = [table.c.status == PENDING, table.c.payable_at < cutoff]
            if after is not None:
                # Start past the rewards earlier batches moved: on PostgreSQL their old
                # index entries stay until vacuum, and every batch stepped over all of
                # them (batches slowed from 1.3 s to 1.9 s over a run of 1M rewards).
                eligible.append(table.c.id > after)
            batch = (
                select(table.c.id).where(*eligible).order_by(table.c.id).limit(wanted).subquery()
            )
            found, upper = self._execute(select(func.count(), func.max(batch.c.id))).one()
            if upper is None:
                return moved, after, False
            # The status condition is re-checked under the row lock (PostgreSQL), so a
            # reward another period's run took meanwhile is skipped, not stolen.
            moved += self._execute(
                update(table)
                .where(*eligible, table.c.id <= upper)
                .values(status=PROCESSING, payout_period=period)
            ).rowcount
            after = upper
            if found < wanted:
                return moved, after, False
            # A full batch of which some left the pending state since it was read
            # (a review, on PostgreSQL): go on, a short batch would end the run's walk.
        return moved, after, True

    def release(self, period: str, minimums: Minimums) -> tuple[int, int]:
        assigned = [
            (referrals, referrals.c.referrer_id, referrals.c.reward_cents),
            (rewards, rewards.c.user_id, rewards.c.cents),
        ]
        per_table = [
            select(user.label("user_id"), table.c.program_id, func.sum(cents).label("cents"))
            .where(table.c.payout_period == period, table.c.status == PROCESSING)
            .group_by(user, table.c.program_id)
            for table, user, cents in assigned
        ]
        totals = union_all(*per_table).subquery("totals")
        total = func.sum(totals.c.cents)
        floor = (
            case(
                {program: minimums.floor(program) for program in minimums.by_program},
                value=totals.c.program_id,
                else_=payout_floor(minimums.otherwise),
            )
            if minimums.by_program
            else literal(payout_floor(minimums.otherwise))
        )
        # Below the program's minimum, or negative whatever the minimum: a total of zero
        # settles (a clawback offset by new rewards), since paying nothing pays nobody twice.
        below = (
            select(totals.c.user_id, totals.c.program_id, total)
            .group_by(totals.c.user_id, totals.c.program_id)
            .having(total < floor)
        )
        # No try/finally: after a failure the unit of work rolls back, and the CREATE
        # with it (PostgreSQL's DDL is transactional; so is SQLite's).
        self._execute(CreateTable(_released))
        self._execute(insert(_released).from_select(["user_id", "program_id", "cents"], below))
        for table, user, _ in assigned:
            released = (
                select(_released.c.user_id)
                .where(_released.c.user_id == user, _released.c.program_id == table.c.program_id)
                .exists()
            )
            self._execute(
                update(table)
                .where(table.c.payout_period == period, table.c.status == PROCESSING, released)
                .values(status=PENDING, payout_period=None)
            )
        positive = case((_released.c.cents > 0, _released.c.cents), else_=0)
        users, cents = self._execute(
            select(func.count(), func.coalesce(func.sum(positive), 0))
        ).one()
        self._execute(DropTable(_released))
        return int(users), int(cents)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        return self._lines(referrals.c.payout_period == period, rewards.c.payout_period == period)

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        def payable(table: Table) -> Any:
            return or_(
                and_(table.c.payout_period == period, table.c.status == PROCESSING),
                and_(table.c.status == PENDING, table.c.payable_at < cutoff),
            )

        return self._lines(payable(referrals), payable(rewards))

    def _lines(self, own: Any, other: Any) -> Iterator[PayoutLine]:
        """Two grouped queries in the same order, merged as they stream: the referrals'
        rewards per referrer and program (as before entries existed), the entries per
        user, program and kind."""
        own_query: Select[Any] = (
            select(
                referrals.c.referrer_id,
                referrals.c.program_id,
                literal(LineKind.REWARD.value),
                func.count(),
                func.sum(referrals.c.reward_cents),
            )
            .where(own)
            .group_by(referrals.c.referrer_id, referrals.c.program_id)
            .order_by(
                self._byte_order(referrals.c.referrer_id), self._byte_order(referrals.c.program_id)
            )
            .execution_options(yield_per=2000)
        )
        other_query: Select[Any] = (
            select(
                rewards.c.user_id,
                rewards.c.program_id,
                rewards.c.kind,
                func.count(),
                func.sum(rewards.c.cents),
            )
            .where(other)
            .group_by(rewards.c.user_id, rewards.c.program_id, rewards.c.kind)
            .order_by(self._byte_order(rewards.c.user_id), self._byte_order(rewards.c.program_id))
            .execution_options(yield_per=2000)
        )
        # Both are in byte order, which is Python's order of str (code points, as UTF-8).
        merged = heapq.merge(
            self._execute(own_query), self._execute(other_query), key=_USER_AND_PROGRAM
        )
        for (user, program), groups in groupby(merged, key=_USER_AND_PROGRAM):
            count, cents = [0, 0], [0, 0]  # the reward line, the clawback line
            for _, _, kind, n, total in groups:
                line = int(kind == CLAWBACK)
                count[line] += int(n)
                cents[line] += int(total)
            if count[0]:
                yield PayoutLine(user, count[0], cents[0], LineKind.REWARD, program)
            if count[1]:
                yield PayoutLine(user, count[1], cents[1], LineKind.CLAWBACK, program)

    def complete(self, run: PayoutRun, owner: str) -> int:
        done = self._execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == run.period,
                payout_runs.c.lease_owner == owner,
                payout_runs.c.status == RUNNING,
            )
            .values(
                status=COMPLETED,
                referrer_count=run.referrer_count,
                referral_count=run.referral_count,
                # The run's one currency's, for the release before per-currency totals;
                # 0 with several (it would read them as USD).
                total_cents=run.total_cents or 0,
                clawback_cents=run.clawback_cents or 0,
                carried_forward_cents=run.carried_forward_cents or 0,
                report_key=run.report_key,
                report_sha256=run.report_sha256,
                previous_month_period=run.previous_month_period,
                previous_month_sha256=run.previous_month_sha256,
                previous_period=run.previous_period,
                previous_sha256=run.previous_sha256,
                completed_at=run.completed_at,
                lease_owner=None,
                lease_expires_at=None,
                error=run.error,
            )
        )
        if done.rowcount != 1:
            raise LeaseLost(f"the lease of the payout run {run.period} passed to another owner")
        self._execute(delete(payout_run_totals).where(payout_run_totals.c.period == run.period))
        for total in run.totals:
            self._execute(insert(payout_run_totals), {"period": run.period, **asdict(total)})
        paid = 0
        for table in (referrals, rewards):
            paid += self._execute(
                update(table)
                .where(table.c.payout_period == run.period, table.c.status == PROCESSING)
                .values(status=PAID)
            ).rowcount
        return paid

    def fail(self, period: str, owner: str, error: str) -> None:
        self._execute(
            update(payout_runs)
            .where(payout_runs.c.period == period, payout_runs.c.lease_owner == owner)
            .values(status=FAILED, lease_owner=None, lease_expires_at=None, error=error)
        )

    def lock_chain(self) -> None:
        # SQLite: a writer holds the database's write lock (BEGIN IMMEDIATE) already.
        # PostgreSQL: a lock every completion takes, released when its transaction ends.
        # Under READ COMMITTED, the reads after it see the completion that held it.
        if self._postgresql:
            self._execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_CHAIN_LOCK})

    def note_publication(self, period: str, problem: str | None) -> None:
        self._execute(
            update(payout_runs)
            .where(payout_runs.c.period == period, payout_runs.c.status == COMPLETED)
            .values(error=problem)
        )
