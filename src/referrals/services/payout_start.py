"""Starting a payout run that works elsewhere (AWS: the payout state machine), for
deployments where a request cannot wait for a run to complete.

The run itself is `payouts.run_payout`, called slice by slice by whatever the
starter starts; this only checks what a request can answer at once: the period
is valid and ended (400 before anything starts), or already paid (the stored run).
"""

from dataclasses import dataclass

from referrals.domain.errors import InvalidInput
from referrals.domain.model import PayoutRun, RunStatus
from referrals.domain.periods import Period
from referrals.ports import Clock, PayoutStarter, ReportStore, Store
from referrals.services.payouts import run_payout


@dataclass(frozen=True)
class PayoutStarted:
    period: str
    # What names the start where it runs (a Step Functions execution's ARN).
    execution: str


def start_payout(
    store: Store, reports: ReportStore, clock: Clock, starter: PayoutStarter, period: Period
) -> PayoutRun | PayoutStarted:
    """The period's completed run, or its run started (or found under way) on `starter`.

    An earlier month whose run stopped is no reason to refuse: what the starter runs
    completes that month first (`schedule.first_owed`), then goes on with this one. A
    run live elsewhere is no reason either: the started run waits for nothing, finds
    the period's lease held and ends at once, while the live run completes it.
    """
    if not period.has_ended(clock.now()):
        raise InvalidInput(f"the period {period} has not ended yet")
    with store.read() as uow:
        run = uow.payouts.get(str(period))
    if run is not None and run.status is RunStatus.COMPLETED:
        # Returns the stored run at once, publishing its report first if a crash or the
        # report store kept it from being published (as a synchronous run would).
        return run_payout(store, reports, clock, period)
    return PayoutStarted(str(period), starter.start(str(period)))
