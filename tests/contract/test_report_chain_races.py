"""The report hash chain under concurrent completions, on every store: two months that
complete at the same instant are linked one after the other, never both to the same
predecessor (the chain never forks)."""

import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from referrals.domain.model import PayoutRun, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.ports import Store
from referrals.services.payouts import run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.fakes import MemoryReports

TRIES = 10  # pairs of months completing at once
START = Period(2024, 1)


class TickingClock:
    """Each reading a microsecond later than the one before, from any thread: completion
    times are distinct, as on a real clock, so `last_completed` is well defined."""

    def __init__(self, moment: datetime) -> None:
        self._moment = moment
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._moment += timedelta(microseconds=1)
            return self._moment


def months(n: int) -> list[Period]:
    periods = [START]
    for _ in range(n - 1):
        periods.append(periods[-1].next())
    return periods


def complete_together(store: Store, clock: TickingClock, pair: list[Period]) -> list[PayoutRun]:
    """Run both periods in threads released together just before each completes."""
    reports = MemoryReports()
    barrier = threading.Barrier(len(pair))
    runs: list[PayoutRun] = []
    errors: list[BaseException] = []

    def at(step: str) -> None:
        if step == "report_written":  # rendered and staged: next, the completion
            barrier.wait(timeout=30)

    def pay(period: Period) -> None:
        try:
            runs.append(run_payout(store, reports, clock, period, checkpoint=at))
        except BaseException as error:  # reported below, with the others
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=pay, args=(period,)) for period in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(runs) == len(pair), errors
    return runs


def test_months_completing_at_once_never_fork_the_chain(store: Store) -> None:
    clock = TickingClock(datetime(2026, 12, 6, tzinfo=UTC))
    code = enroll(store, clock, "alice").referrer.code
    periods = months(2 * TRIES)
    for n, period in enumerate(periods):  # a reward in each month (the later run may pay it)
        moment = period.start.replace(day=10)
        sign_up(store, clock, RuleVersion(), f"u{n}", code, signed_up_at=moment)
    for n in range(TRIES):
        complete_together(store, clock, periods[2 * n : 2 * n + 2])

    with store.read() as uow:
        runs = sorted(uow.payouts.list(), key=lambda run: run.completed_at or run.started_at)
    assert len(runs) == 2 * TRIES and all(r.status is RunStatus.COMPLETED for r in runs)
    named = [run.previous_period for run in runs]
    assert len(set(named)) == len(named), f"two runs name the same predecessor: {named}"
    # One chain by completion: each run names the run completed just before it.
    assert runs[0].previous_period is None and runs[0].previous_sha256 is None
    for before, run in pairwise(runs):
        assert (run.previous_period, run.previous_sha256) == (before.period, before.report_sha256)
