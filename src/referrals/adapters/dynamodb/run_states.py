"""The state of a reward in a payout run, read from its run: paid once the run completes.

A run assigns a pending reward by one conditional write that takes its stored
state away (`status_pk` removed: it leaves the `by_status` index) and marks it paid
with the run (`PAID_WITH_RUN`, `payout_period` the run's). Until the run completes
the reward reads as processing, and from the run's completion on as paid: the
completion, one write of the run item (with its event and the report chain's
head), pays every reward of the run at once, and no reward is written a second
time to be marked paid.

Each write of a reward re-writes its copies in the indexes that project what it
changes (`by_status`, twice when its key moves, `by_id`, `by_period`): written once,
and leaving `by_status` rather than moving in it, a paid reward costs about a
third of what it cost when it was stored as processing, then as paid.

So the partitions of processing and paid in `by_status` hold only rewards stored so:
by an earlier release (which assigned as processing, then paid item by item; its
pay step still pays those), imported as paid, or paid and moved on (a clawback
stores its state again). Processing rewards are read from the `by_period`
partitions of the runs that have not completed; paid ones from `by_id`, filtered,
beside the partition of paid.

A run's state is read once per unit of work (a consistent GetItem of the run,
remembered), only for a reward paid with a run.
"""

from collections.abc import Iterator

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values
from referrals.domain.model import ReferralStatus, RunStatus

PAID_WITH_RUN = "paid_with_run"  # set on a reward a run assigned: paid when it completes
PAID, PROCESSING = ReferralStatus.PAID.value, ReferralStatus.PROCESSING.value
COMPLETED = RunStatus.COMPLETED.value
# What a projection of a reward needs for its state to be read.
STATE_ATTRIBUTES = f"status_pk, payout_period, {PAID_WITH_RUN}"


def in_run(item: Values) -> bool:
    """Assigned to a run, as stored: paid with it (this release) or processing (an earlier
    one). A reward paid with a completed run is too: it never leaves the run."""
    status = item.get("status_pk")
    return status == PROCESSING or (status is None and PAID_WITH_RUN in item)


def _with_run() -> ConditionBase:
    return Attr("status_pk").not_exists() & Attr(PAID_WITH_RUN).exists()


def in_run_condition() -> ConditionBase:
    """The condition that an item is assigned to a run (any run: and it with the period)."""
    return Attr("status_pk").eq(PROCESSING) | _with_run()


def stored_as(status: ReferralStatus) -> ConditionBase:
    """The condition that an item is stored as read in `status`. Paid with a run matches
    both processing and paid: a run's completion is what tells them apart, and it is
    never undone, so one read as paid is paid still."""
    if status is ReferralStatus.PROCESSING:
        return in_run_condition()
    if status is ReferralStatus.PAID:
        return Attr("status_pk").eq(PAID) | _with_run()
    return Attr("status_pk").eq(status.value)


def paid_with_run_filter() -> ConditionBase:
    """The filter of the items paid with a run, on an index that holds every referral."""
    return _with_run()


class RunStates:
    """The state of rewards whose run may not have completed yet, per unit of work."""

    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._completed: dict[str, bool] = {}

    def completed(self, period: str) -> bool:
        if period not in self._completed:
            run = self._tables.get(self._tables.main, items.run_key(period))
            self._completed[period] = run is not None and run.get("status") == COMPLETED
        return self._completed[period]

    def status(self, item: Values) -> ReferralStatus:
        """The state of a referral's reward or an entry, from its item."""
        if "status_pk" in item:
            return ReferralStatus(item["status_pk"])
        if self.completed(item["payout_period"]):  # paid with the run
            return ReferralStatus.PAID
        return ReferralStatus.PROCESSING

    def in_running_runs(self, project: str | None = None) -> Iterator[Values]:
        """Every item assigned to a run that has not completed, run after run (in
        `by_period` order; `project` must name STATE_ATTRIBUTES). Runs are few (one a
        month): their partition is read, consistently."""
        main = self._tables.main
        runs = self._tables.query(main, Key("pk").eq("RUNS"), consistent=True)
        for run in runs:
            period = run["sk"]
            self._completed[period] = run.get("status") == COMPLETED
            if self._completed[period]:
                continue
            found = self._tables.query(
                main, Key("period_pk").eq(period), index="by_period", project=project
            )
            yield from (item for item in found if in_run(item))
