"""Payout runs on DynamoDB: one item per period (`RUNS` / `<YYYY-MM>`) and the head of
the report chain (`CHAIN` / `HEAD`).

A completed run's totals per currency are its item's `totals`: a list of
[currency, referrer_count, referral_count, total_cents, clawback_cents,
carried_forward_cents] per currency (lists, not maps: no attribute names repeated, so
a run of many currencies stays far below 1 KB). A run item of the release before has
none: every program was in USD then, and it reads as USD totals of its own figures.

Claiming and renewing a run's lease are conditional writes sent at once, not at
commit: the lease must be visible to other processes the moment it is taken. The
run's rewards are moved in batches fenced on the lease (`payout_entries`); the run
turns completed in the unit of work's commit, atomically with its event and with
the chain head, whose version makes two completions at once link one after the other.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import ConditionFailed, Tables
from referrals.adapters.dynamodb.expressions import Values, Write, put, update
from referrals.adapters.dynamodb.payout_entries import RunEntries
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import to_micros
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    CurrencyTotal,
    Minimums,
    PayoutLine,
    PayoutRun,
    RunStatus,
)
from referrals.domain.run_totals import recorded_totals

RUNS = Key("pk").eq("RUNS")
RUNNING, COMPLETED = RunStatus.RUNNING.value, RunStatus.COMPLETED.value


class DynamoPayouts:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx
        self._fence: tuple[str, str] | None = None  # (period, owner) after a lease renewal
        self._chain_version: int | None = None  # the chain head's, as `lock_chain` read it

    def get(self, period: str) -> PayoutRun | None:
        item = self._tables.get(self._tables.main, items.run_key(period))
        return _run(item) if item else None

    def list(self) -> Sequence[PayoutRun]:
        found = self._tables.query(self._tables.main, RUNS, consistent=True, newest_first=True)
        return [_run(item) for item in found]

    def last_completed(self) -> PayoutRun | None:
        done = [r for r in self.list() if r.status is RunStatus.COMPLETED]
        return max(done, key=lambda r: r.completed_at or r.started_at, default=None)

    def completed_before(self, period: str) -> PayoutRun | None:
        earlier = self._tables.query(
            self._tables.main,
            RUNS & Key("sk").lt(period),
            consistent=True,
            newest_first=True,
        )
        runs = map(_run, earlier)
        return next((run for run in runs if run.status is RunStatus.COMPLETED), None)

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        item = {
            **items.run_key(period),
            "status": RUNNING,
            "cutoff": to_micros(cutoff),
            "started_at": to_micros(now),
            "lease_owner": owner,
            "lease_expires_at": to_micros(until),
            "assigned": 0,
        }
        try:
            self._tables.send(put(self._tables.main, item, Attr("pk").not_exists()))
            return True
        except ConditionFailed:
            pass  # the run exists: take it over if it is not completed and its lease ended
        expires = Attr("lease_expires_at")
        return self._update_run(
            period,
            Attr("status").ne(COMPLETED)
            & (expires.not_exists() | expires.lt(to_micros(now)) | Attr("lease_owner").eq(owner)),
            set={"status": RUNNING, "lease_owner": owner, "lease_expires_at": to_micros(until)},
            remove=("error",),
        )

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        renewed = self._update_run(
            period, _held_by(owner), set={"lease_expires_at": to_micros(until)}
        )
        if renewed:
            self._fence = (period, owner)
        return renewed

    def _update_run(self, period: str, condition: ConditionBase, **change: Any) -> bool:
        """Update the run item at once (`change`: as `update` takes it); False if its
        condition is false."""
        key = items.run_key(period)
        try:
            self._tables.send(update(self._tables.main, key, condition=condition, **change))
            return True
        except ConditionFailed:
            return False

    def _owner(self, period: str) -> str:
        """Who holds the lease, as this unit of work renewed it: its writes are fenced on it."""
        if self._fence is None or self._fence[0] != period:
            raise Conflict("payout writes need a renewed lease in this unit of work")
        return self._fence[1]

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        # The next batch goes on after the last pending item this one read: those on
        # hold at the cutoff are read once per run, not once per batch.
        entries = RunEntries(self._tables, period)
        return entries.assign(self._owner(period), cutoff, limit, after)

    def release(self, period: str, minimums: Minimums) -> tuple[int, int]:
        return RunEntries(self._tables, period).release(self._owner(period), minimums)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        return RunEntries(self._tables, period).lines()

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        return RunEntries(self._tables, period).preview(cutoff)

    def complete(self, run: PayoutRun, owner: str) -> int:
        """Pay the run's rewards in fenced batches, then queue the run's completion.

        Marking rewards paid is idempotent, so a crash part-way is finished by the
        next attempt; the run itself turns completed in the unit of work's commit,
        atomically with its `payout.completed` event.
        """
        self._fence = (run.period, owner)
        paid = RunEntries(self._tables, run.period).pay(owner)
        chain = {
            "previous_month_period": run.previous_month_period,
            "previous_month_sha256": run.previous_month_sha256,
            "previous_period": run.previous_period,
            "previous_sha256": run.previous_sha256,
        }
        completed = {
            "status": COMPLETED,
            "referrer_count": run.referrer_count,
            "referral_count": run.referral_count,
            # The run's one currency's figures, for the release before `totals`; 0 with
            # several currencies (it would read them as USD).
            "total_cents": run.total_cents or 0,
            "clawback_cents": run.clawback_cents or 0,
            "carried_forward_cents": run.carried_forward_cents or 0,
            "totals": [
                [
                    total.currency,
                    total.referrer_count,
                    total.referral_count,
                    total.total_cents,
                    total.clawback_cents,
                    total.carried_forward_cents,
                ]
                for total in run.totals
            ],
            "report_key": run.report_key or "",
            "report_sha256": run.report_sha256 or "",
            "completed_at": to_micros(run.completed_at or run.started_at),
            **{name: value for name, value in chain.items() if value is not None},
            "error": run.error,  # None removes it
        }
        self._tx.write(
            update(
                self._tables.main,
                items.run_key(run.period),
                set=completed,
                remove=("lease_owner", "lease_expires_at"),
                condition=_held_by(owner),
            )
        )
        self._tx.write(self._chain_head_write(run))
        return paid

    def lock_chain(self) -> None:
        """Read the chain head's version: `complete` conditions its commit on it, so of two
        completions that read the same head, the second to commit gets a Conflict."""
        head = self._tables.get(self._tables.main, items.CHAIN_HEAD)
        self._chain_version = int(head["version"]) if head else 0

    def _chain_head_write(self, run: PayoutRun) -> Write:
        if self._chain_version is None:
            self.lock_chain()
        version = self._chain_version or 0
        return update(
            self._tables.main,
            items.CHAIN_HEAD,
            set={
                "version": version + 1,
                "head_period": run.period,
                "head_sha256": run.report_sha256 or "",
            },
            condition=Attr("version").eq(version) if version else Attr("pk").not_exists(),
        )

    def note_publication(self, period: str, problem: str | None) -> None:
        self._update_run(period, Attr("status").eq(COMPLETED), set={"error": problem})

    def fail(self, period: str, owner: str, error: str) -> None:
        self._update_run(
            period,
            Attr("lease_owner").eq(owner),
            set={"status": RunStatus.FAILED.value, "error": error},
            remove=("lease_owner", "lease_expires_at"),
        )


def _run(item: Values) -> PayoutRun:
    return recorded_totals(items.run(item), map(_currency_total, item.get("totals") or ()))


def _currency_total(stored: list[Any]) -> CurrencyTotal:
    currency, *figures = stored
    return CurrencyTotal(str(currency), *(int(figure) for figure in figures))  # Decimals


def _held_by(owner: str) -> ConditionBase:
    return Attr("lease_owner").eq(owner) & Attr("status").eq(RUNNING)
