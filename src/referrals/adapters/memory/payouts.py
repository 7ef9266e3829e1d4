"""Payout runs, in memory: leases, assignment, lines and completion."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from referrals.adapters.memory.state import (
    Entry,
    State,
    cents_of,
    entries,
    kind_of,
    put_entry,
    user_of,
)
from referrals.domain.model import (
    LineKind,
    Minimums,
    PayoutLine,
    PayoutRun,
    ReferralStatus,
    RunStatus,
    line_order,
)
from referrals.ports import LeaseLost


class MemoryPayouts:
    def __init__(self, state: State) -> None:
        self._s = state

    def get(self, period: str) -> PayoutRun | None:
        return self._s.runs.get(period)

    def list(self) -> Sequence[PayoutRun]:
        return sorted(self._s.runs.values(), key=lambda r: r.period, reverse=True)

    def last_completed(self) -> PayoutRun | None:
        done = [r for r in self._s.runs.values() if r.status is RunStatus.COMPLETED]
        return max(done, key=lambda r: r.completed_at or r.started_at, default=None)

    def completed_before(self, period: str) -> PayoutRun | None:
        done = [
            r
            for r in self._s.runs.values()
            if r.status is RunStatus.COMPLETED and r.period < period
        ]
        return max(done, key=lambda r: r.period, default=None)

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        run = self._s.runs.get(period)
        if run is None:
            run = PayoutRun(period, RunStatus.RUNNING, cutoff, started_at=now)
        elif run.status is RunStatus.COMPLETED or not (
            run.lease_expires_at is None or run.lease_expires_at < now or run.lease_owner == owner
        ):
            return False
        self._s.runs[period] = replace(
            run, status=RunStatus.RUNNING, lease_owner=owner, lease_expires_at=until, error=None
        )
        return True

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        run = self._s.runs.get(period)
        if run is None or run.lease_owner != owner or run.status is not RunStatus.RUNNING:
            return False
        self._s.runs[period] = replace(run, lease_expires_at=until)
        return True

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        # Ids are unique across referrals and entries, so one cursor walks both.
        eligible = sorted(
            (
                e
                for e in entries(self._s)
                if e.status is ReferralStatus.PENDING
                and e.payable_at < cutoff
                and (after is None or e.id > after)
            ),
            key=lambda e: e.id,
        )[:limit]
        for entry in eligible:
            put_entry(
                self._s, replace(entry, status=ReferralStatus.PROCESSING, payout_period=period)
            )
        return len(eligible), eligible[-1].id if eligible else after

    def release(self, period: str, minimums: Minimums) -> tuple[int, int]:
        assigned = [
            e
            for e in entries(self._s)
            if e.payout_period == period and e.status is ReferralStatus.PROCESSING
        ]
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for entry in assigned:
            totals[user_of(entry), entry.program_id] += cents_of(entry)
        below = {key for key, cents in totals.items() if cents < minimums.floor(key[1])}
        for entry in assigned:
            if (user_of(entry), entry.program_id) in below:
                put_entry(
                    self._s, replace(entry, status=ReferralStatus.PENDING, payout_period=None)
                )
        return len(below), sum(max(totals[user], 0) for user in below)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        return _lines(entries(self._s), lambda e: e.payout_period == period)

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        def payable(e: Entry) -> bool:
            if e.status is ReferralStatus.PROCESSING:
                return e.payout_period == period
            return e.status is ReferralStatus.PENDING and e.payable_at < cutoff

        return _lines(entries(self._s), payable)

    def complete(self, run: PayoutRun, owner: str) -> int:
        current = self._s.runs.get(run.period)
        if (
            current is None
            or current.lease_owner != owner
            or current.status is not RunStatus.RUNNING
        ):
            raise LeaseLost(run.period)
        self._s.runs[run.period] = replace(
            run, status=RunStatus.COMPLETED, lease_owner=None, lease_expires_at=None
        )
        paid = [
            e
            for e in entries(self._s)
            if e.payout_period == run.period and e.status is ReferralStatus.PROCESSING
        ]
        for entry in paid:
            put_entry(self._s, replace(entry, status=ReferralStatus.PAID))
        return len(paid)

    def fail(self, period: str, owner: str, error: str) -> None:
        run = self._s.runs.get(period)
        if run is not None and run.lease_owner == owner:
            self._s.runs[period] = replace(
                run, status=RunStatus.FAILED, lease_owner=None, lease_expires_at=None, error=error
            )

    def lock_chain(self) -> None:
        return None  # a unit of work holds the store's lock until it ends

    def note_publication(self, period: str, problem: str | None) -> None:
        run = self._s.runs.get(period)
        if run is not None and run.status is RunStatus.COMPLETED:
            self._s.runs[period] = replace(run, error=problem)


def _lines(entries: Iterable[Entry], keep: Callable[[Entry], bool]) -> Iterator[PayoutLine]:
    counts: dict[tuple[str, str, LineKind], list[int]] = defaultdict(lambda: [0, 0])
    for e in entries:
        if keep(e):
            totals = counts[user_of(e), e.program_id, kind_of(e)]
            totals[0] += 1
            totals[1] += cents_of(e)
    for user, program, kind in sorted(counts, key=line_order):
        count, cents = counts[user, program, kind]
        yield PayoutLine(user, count, cents, kind, program)
