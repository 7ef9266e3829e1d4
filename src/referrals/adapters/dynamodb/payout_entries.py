"""The rewards and entries of one payout run on DynamoDB: assigned, released, paid, summed.

A run finds what it may pay in the `by_status` partition of pending rewards (in id
order, filtered on the time each becomes payable: a run at the start of a month
reads little it cannot pay) and what it holds in the sparse `by_period` index (by
the user paid, so a user's items are contiguous). Both are eventually consistent:
a write conditioned on the state it expects skips an item the index still shows
in an old state, and before summing, a run waits until `by_period` shows as many
items as the run item's `assigned` count, which moves in the same transactions.

An assigned item is stored as paid with the run (run_states): it reads as processing
until the run completes and as paid from then on, so it is written once, not again
to be paid. Items an earlier release assigned as processing are still paid here.

Items are written in batches of 99, each in one transaction with a write of the
run item conditioned on the run's lease: a run that lost its lease can never
assign, release or pay a reward (LeaseLost).
"""

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import chain, groupby

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import ConditionFailed, Tables, TransactionCancelled
from referrals.adapters.dynamodb.expressions import Values, Write, update
from referrals.adapters.dynamodb.run_states import PAID_WITH_RUN, in_run, in_run_condition
from referrals.adapters.times import to_micros
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    LineKind,
    Minimums,
    PayoutLine,
    ReferralStatus,
    RunStatus,
    line_order,
)
from referrals.ports import LeaseLost

PAYOUT_CHUNK = 99  # item writes per transaction, plus the lease condition
INDEX_WAIT_SECONDS = 30.0  # how long a run waits for an index to catch up
# A released user's items are kept in memory to be sent back to pending without a
# second read; a user with more in one run is read again by the prefix of their key.
RELEASE_BUFFER = 1000
PENDING, PROCESSING, PAID = (
    s.value for s in (ReferralStatus.PENDING, ReferralStatus.PROCESSING, ReferralStatus.PAID)
)
RUNNING = RunStatus.RUNNING.value


class RunEntries:
    def __init__(self, tables: Tables, period: str) -> None:
        self._tables = tables
        self._period = period

    def assign(
        self, owner: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        """Move up to `limit` pending items payable before `cutoff` to the run, walking
        the pending items after the id `after`; how many, and the id to go on after.

        The index may still list items that were just moved: their update fails its
        `pending` condition and is skipped, and the walk goes on, so fewer than
        `limit` means the index is exhausted.
        """
        moved = 0
        chunk: list[Values] = []
        last = after
        bound = to_micros(cutoff)
        for item in self._pending(cutoff, after):
            last = item["id"]
            if items.payable_micros(item) >= bound:
                continue  # still on hold at the cutoff
            chunk.append(item)
            if len(chunk) == min(PAYOUT_CHUNK, limit - moved):
                moved += self._fenced_writes(owner, chunk, self._assigned, count_assigned=1)
                chunk = []
                if moved >= limit:
                    return moved, last
        return moved + self._fenced_writes(owner, chunk, self._assigned, count_assigned=1), last

    def _assigned(self, item: Values) -> Write:
        return update(
            self._tables.main,
            items.item_key(item),
            set={
                "status_pk": None,  # out of `by_status`: paid with the run (run_states)
                PAID_WITH_RUN: True,
                "payout_period": self._period,
                "period_pk": self._period,
                "period_sk": f"{items.payee(item)}#{item['id']}",
            },
            condition=Attr("status_pk").eq(PENDING),
        )

    def release(self, owner: str, minimums: Minimums) -> tuple[int, int]:
        """Send back to pending every item of the users whose total in a program is below
        its minimum or negative; how many (user, program) totals, and the positive ones.

        One pass over `by_period`: a user's totals are known when the next user starts
        (a user's items are together in the index, whatever their programs).
        Released items go back to pending (the next run whose cutoff is later pays
        them) and leave the period, in fenced transactions that also take them off the
        run's `assigned` count, so that waiting for the index expects what is left.
        """
        self.wait_for_index()
        released_users = released_cents = 0
        chunk: list[Values] = []
        for user, group in groupby(self._items(), key=items.payee):
            totals: dict[str, int] = defaultdict(int)  # by program
            count = 0
            settled = False  # some of it is paid already (a completion cut short)
            kept: list[Values] = []
            for item in group:
                totals[items.program_of(item)] += int(item["reward_cents"])
                count += 1
                settled = settled or not in_run(item)
                if count <= RELEASE_BUFFER:
                    kept.append(item)
            below = {p for p, total in totals.items() if total < minimums.floor(p)}
            if settled or not below:
                continue
            released_users += len(below)
            # What was deferred; a debt is not money out.
            released_cents += sum(max(totals[p], 0) for p in below)
            # Too many to have kept: read the user's items again, by their key prefix.
            for item in kept if count <= RELEASE_BUFFER else self._user_items(user):
                if items.program_of(item) not in below:
                    continue
                chunk.append(item)
                if len(chunk) == PAYOUT_CHUNK:
                    self._fenced_writes(owner, chunk, self._released, count_assigned=-1)
                    chunk = []
        self._fenced_writes(owner, chunk, self._released, count_assigned=-1)
        return released_users, released_cents

    def _released(self, item: Values) -> Write:
        return update(
            self._tables.main,
            items.item_key(item),
            set={"status_pk": PENDING},
            remove=(PAID_WITH_RUN, "payout_period", "period_pk", "period_sk"),
            condition=self._assigned_here(),
        )

    def pay(self, owner: str) -> int:
        """Mark paid the items of the run that an earlier release assigned (those this one
        assigned are paid by the run's completion); how many items the run pays, including
        those an attempt cut short paid already (and that may be clawed back since)."""
        self.wait_for_index()
        paid = written = 0
        chunk: list[Values] = []
        for item in self._items():
            paid += 1
            if item.get("status_pk") != PROCESSING:
                continue  # paid with the run, or paid already
            chunk.append(item)
            if len(chunk) == PAYOUT_CHUNK:
                written += self._fenced_writes(owner, chunk, self._paid)
                chunk = []
        written += self._fenced_writes(owner, chunk, self._paid)
        if not written:
            # Nothing to mark (the run's completion pays what it assigned): a run that
            # lost its lease learns it here all the same, not at its commit.
            self._fence_alone(owner)
        return paid

    def _fence_alone(self, owner: str) -> None:
        try:
            self._tables.send(self._fence(owner, 0))
        except ConditionFailed as failed:
            raise LeaseLost(
                f"the lease of the payout run {self._period} passed to another"
            ) from failed

    def _paid(self, item: Values) -> Write:
        return update(
            self._tables.main,
            items.item_key(item),
            set={"status_pk": PAID},
            condition=self._assigned_here(),
        )

    def _assigned_here(self) -> ConditionBase:
        return in_run_condition() & Attr("payout_period").eq(self._period)

    def _fenced_writes(
        self,
        owner: str,
        batch: list[Values],
        write: Callable[[Values], Write],
        count_assigned: int = 0,
    ) -> int:
        """Write `batch` in one transaction with the lease condition, skipping items that
        another writer moved first; how many were written.

        The run item's `assigned` count moves by `count_assigned` per item written.
        """
        for attempt in range(10):
            if not batch:
                return 0
            fence = self._fence(owner, count_assigned * len(batch))
            try:
                self._tables.transact([fence, *(write(item) for item in batch)])
                return len(batch)
            except TransactionCancelled as cancelled:
                reasons = cancelled.reasons
            if reasons[0] == "ConditionalCheckFailed":
                raise LeaseLost(f"the lease of the payout run {self._period} passed to another")
            # Drop the items whose condition failed (another writer got there first);
            # retry the rest, after a pause if it was a mere transaction conflict.
            batch = [
                item
                for item, reason in zip(batch, reasons[1:], strict=True)
                if reason != "ConditionalCheckFailed"
            ]
            if "TransactionConflict" in reasons:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise Conflict("payout writes kept conflicting")

    def _fence(self, owner: str, assigned: int) -> Write:
        """The write of the run item that holds only while `owner` holds its lease, moving
        its `assigned` count by `assigned`."""
        return update(
            self._tables.main,
            items.run_key(self._period),
            set={"lease_owner": owner},
            add={"assigned": assigned} if assigned else None,
            condition=Attr("lease_owner").eq(owner) & Attr("status").eq(RUNNING),
        )

    def lines(self) -> Iterator[PayoutLine]:
        # Every item of the period whatever its state: a reward clawed back after
        # this run paid it stays in its lines (period_pk is never removed once paid).
        self.wait_for_index()
        for _, group in groupby(self._items(), key=items.payee):
            yield from _lines(group)

    def preview(self, cutoff: datetime) -> Iterator[PayoutLine]:
        """The lines of what is assigned to the run and of what it would assign now."""
        assigned = (i for i in self._items() if in_run(i))
        return _lines(chain(self.payable(cutoff), assigned))

    def payable(self, cutoff: datetime) -> Iterator[Values]:
        """Pending items payable before `cutoff`, as the `by_status` index shows them."""
        bound = to_micros(cutoff)
        return (i for i in self._pending(cutoff) if items.payable_micros(i) < bound)

    def _pending(self, cutoff: datetime, after: str | None = None) -> Iterator[Values]:
        """Pending items made before `cutoff` (those payable before it are among them: a
        hold only delays), in id order after `after`."""
        key = Key("status_pk").eq(PENDING)
        if after is not None:
            key &= Key("id").gt(after)
        return self._tables.query(
            self._tables.main,
            key,
            index="by_status",
            filter=Attr("created_at").lt(to_micros(cutoff)),
        )

    def _items(self) -> Iterator[Values]:
        return self._tables.query(
            self._tables.main, Key("period_pk").eq(self._period), index="by_period"
        )

    def _user_items(self, user: str) -> Iterator[Values]:
        return self._tables.query(
            self._tables.main,
            Key("period_pk").eq(self._period) & Key("period_sk").begins_with(f"{user}#"),
            index="by_period",
        )

    def wait_for_index(self) -> None:
        """Wait until the `by_period` index shows every item the run assigned."""
        run = self._tables.get(self._tables.main, items.run_key(self._period))
        if run is None:
            return  # rewards imported as paid: no run counted them, nothing to wait for
        expected = int(run.get("assigned", 0))
        deadline = time.monotonic() + INDEX_WAIT_SECONDS
        while True:
            key = Key("period_pk").eq(self._period)
            seen = self._tables.count(self._tables.main, key, index="by_period")
            if seen == expected:
                return
            if time.monotonic() > deadline:
                raise Conflict(f"index shows {seen} of {expected} rewards of {self._period}")
            time.sleep(0.2)


def _lines(found: Iterable[Values]) -> Iterator[PayoutLine]:
    """The lines of `found` items, in PayoutLine order. `lines` passes one user's items
    at a time (their programs and kinds interleave in the index, which orders a user's
    items by id), so what is held is one user's lines."""
    totals: dict[tuple[str, str, LineKind], list[int]] = defaultdict(lambda: [0, 0])
    for item in found:
        line = totals[items.payee(item), items.program_of(item), items.line_kind(item)]
        line[0] += 1
        line[1] += int(item["reward_cents"])
    for user, program, kind in sorted(totals, key=line_order):
        count, cents = totals[user, program, kind]
        yield PayoutLine(user, count, cents, kind, program)
