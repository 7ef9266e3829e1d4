"""The monthly schedule: pay the month just ended, once, whichever server gets there first,
after any earlier run that stopped without completing."""

import logging
from datetime import datetime

from referrals.domain.errors import EarlierRunFailed, PayoutInProgress
from referrals.domain.model import Minimums, PayoutRun, RunStatus
from referrals.domain.periods import Period, last_ended_period
from referrals.ports import Clock, ReportStore, Store
from referrals.services.payouts import BATCH_SIZE, publish_pending, run_payout, unfinished

logger = logging.getLogger("referrals.schedule")


def run_due_payout(
    store: Store,
    reports: ReportStore,
    clock: Clock,
    batch_size: int = BATCH_SIZE,
    minimum_cents: int | Minimums = 0,
    owner: str | None = None,
) -> PayoutRun | None:
    """Run the payout the schedule owes now, if any (see `due_period`): one run a check.

    Checked every minute rather than fired once at 00:00 on the 1st, so a server
    that was down at midnight, or a run that failed, catches up; the run's claim
    makes it safe for any number of servers to check at the same instant. A run
    that fails again raises PayoutFailed, and is tried again at the next check.

    Each check also publishes the report of a completed run that says it is not
    published (the report store was down as it completed).
    """
    publish_pending(store, reports)
    period = due_period(store, clock.now())
    if period is None:
        return None
    try:
        return run_payout(
            store,
            reports,
            clock,
            period,
            owner=owner,
            batch_size=batch_size,
            minimum_cents=minimum_cents,
        )
    except PayoutInProgress:
        logger.info("payout %s is running elsewhere", period)
    except EarlierRunFailed as error:  # it failed since we looked: the next check runs it
        logger.info("payout %s waits for %s", period, error.period)
    return None


def due_period(store: Store, now: datetime) -> Period | None:
    """The month whose run the schedule owes at `now`, or None.

    First a run that stopped without completing (failed, or crashed and its lease
    expired), whatever its month, the oldest first: its rewards are assigned to it,
    and no later month is paid until it completes. Then the month just ended,
    unless its run is completed.

    A month that ended before the store was put to use (its first API key: the
    first `serve` makes one) and has no run is left alone: the schedule never lived
    through it. Paying it at once would complete an empty run, or a run of whatever
    is being imported into it, and close the month to the rest of the import. Its
    rewards are not lost: an operator runs it when ready, or the next month's run
    pays them. A store with no key at all gives no such date, and is checked as before.
    """
    with store.read() as uow:
        runs = list(uow.payouts.list())
        in_use_since = uow.api_keys.first_created_at()
    stopped = unfinished(runs, now)
    if stopped:
        return Period.parse(stopped[0].period)
    period = last_ended_period(now)
    run = next((r for r in runs if r.period == str(period)), None)
    if run is not None and run.status is RunStatus.COMPLETED:
        return None
    if run is None and in_use_since is not None and period.cutoff <= in_use_since:
        logger.debug("payout %s ended before this store was put to use: not scheduled", period)
        return None
    return period


def first_owed(store: Store, period: Period, owner: str, now: datetime) -> Period:
    """The month to work on so that `period` can be paid: the oldest earlier run that
    stopped without completing, or that `owner` is part way through (a run continued
    slice by slice); else `period` itself. For a run driven in slices (AWS), which
    completes the earlier months first, then goes on with `period`."""
    with store.read() as uow:
        runs = list(uow.payouts.list())
    stopped = {run.period for run in unfinished(runs, now)}
    for run in sorted(runs, key=lambda run: run.period):
        if run.period >= str(period):
            break
        mine = run.status is RunStatus.RUNNING and run.lease_owner == owner
        if run.period in stopped or mine:
            return Period.parse(run.period)
    return period


def oldest_stopped(store: Store, now: datetime) -> Period | None:
    """The oldest run that stopped without completing, or None: what a retry runs."""
    with store.read() as uow:
        stopped = unfinished(uow.payouts.list(), now)
    return Period.parse(stopped[0].period) if stopped else None
