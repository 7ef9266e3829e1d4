"""The monthly schedule: pay the month just ended, once, whichever server gets there first."""

import logging

from referrals.domain.errors import PayoutInProgress
from referrals.domain.model import PayoutRun, RunStatus
from referrals.domain.periods import last_ended_period
from referrals.ports import Clock, ReportStore, Store
from referrals.services.payouts import BATCH_SIZE, run_payout

logger = logging.getLogger("referrals.schedule")


def run_due_payout(
    store: Store,
    reports: ReportStore,
    clock: Clock,
    batch_size: int = BATCH_SIZE,
    minimum_cents: int = 0,
) -> PayoutRun | None:
    """Run the payout of the month just ended unless it is completed or running elsewhere.

    Checked every minute rather than fired once at 00:00 on the 1st, so a server
    that was down at midnight, or a run that failed, catches up; the run's claim
    makes it safe for any number of servers to check at the same instant.

    A month that ended before the store was put to use (its first API key: the
    first `serve` makes one) is left alone: the schedule never lived through it.
    Paying it at once would complete an empty run, or a run of whatever is being
    imported into it, and close the month to the rest of the import. Its rewards
    are not lost: an operator runs it when ready, or the next month's run pays them.
    A store with no key at all gives no such date, and is checked as before.
    """
    period = last_ended_period(clock.now())
    with store.read() as uow:
        run = uow.payouts.get(str(period))
        in_use_since = uow.api_keys.first_created_at()
    if run is not None and run.status is RunStatus.COMPLETED:
        return None
    if run is None and in_use_since is not None and period.cutoff <= in_use_since:
        logger.debug("payout %s ended before this store was put to use: not scheduled", period)
        return None
    try:
        return run_payout(
            store, reports, clock, period, batch_size=batch_size, minimum_cents=minimum_cents
        )
    except PayoutInProgress:
        logger.info("payout %s is running elsewhere", period)
        return None
