"""Payout runs, where their reports go, and what starts a run elsewhere."""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import BinaryIO, Protocol

from referrals.domain.model import (
    Minimums,
    PayoutLine,
    PayoutRun,
)


class LeaseLost(Exception):
    """The payout run's lease passed to another owner: the run must stop at once and
    leave the period to it (a store that fences its writes on the lease raises this
    from the write that found it lost)."""


class PayoutRepository(Protocol):
    def get(self, period: str) -> PayoutRun | None: ...

    def list(self) -> Sequence[PayoutRun]:
        """Every run, the newest period first."""
        ...

    def last_completed(self) -> PayoutRun | None:
        """The run completed most recently: the report hash chain's link by completion."""
        ...

    def completed_before(self, period: str) -> PayoutRun | None:
        """The completed run of the latest period before `period` (YYYY-MM, month order):
        the report hash chain's link by month."""
        ...

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Conditionally take the period's run for `owner` until `until`.

        Creates the run if absent; takes over one that failed or whose lease
        expired (or that `owner` already holds). False if it is completed or
        another owner's lease is live.
        """
        ...

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        """Extend the lease; False if `owner` lost it (the caller must stop)."""
        ...

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        """Move up to `limit` pending entries (referrals' rewards and other entries)
        payable before `cutoff` to this period.

        Each moves pending -> processing by a conditional update, so a reward is
        assigned to one run only. Returns how many moved and where the next
        batch may start: `after`, passed back, lets a store skip the rewards
        it already walked (None: walk from the start). Fewer than `limit`
        means no eligible reward is left. A store that fences its writes on the
        lease raises LeaseLost if it found the lease lost.
        """
        ...

    def release(self, period: str, minimums: Minimums) -> tuple[int, int]:
        """Carry forward: every entry assigned to `period` of a user whose total in it in
        a program is below that program's minimum (`minimums.floor`) or negative goes
        back to pending, for a later run. (A total of zero with no minimum settles: a
        clawback offset by a new reward.)

        Returns how many (user, program) totals were released and the sum of the
        positive ones (what was deferred; a debt carried is not money that was due);
        LeaseLost as `assign_batch`. Runs after the last batch is assigned, in a unit of
        work that renewed the lease.
        """
        ...

    def lines(self, period: str) -> Iterator[PayoutLine]:
        """Per-user and program totals of the entries assigned to `period` (paid, or
        clawed back since), a reward line and a clawback line per user and program as
        they have them, streamed in PayoutLine order."""
        ...

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        """The lines a run would pay now: assigned to `period`, or pending and payable
        before `cutoff`."""
        ...

    def complete(self, run: PayoutRun, owner: str) -> int:
        """Mark the run completed and its entries paid, if `owner` holds the lease.

        The run's state changes when the unit of work commits. Returns the number
        of entries the run has paid; raises LeaseLost if the lease was lost.
        """
        ...

    def fail(self, period: str, owner: str, error: str) -> None:
        """Record a failed attempt and release the lease, if `owner` holds it."""
        ...

    def lock_chain(self) -> None:
        """Serialize completions: the unit of work completing a run calls this before it
        reads the head of the report chain (`last_completed`, `completed_before`), so two
        runs completing at once link one after the other, never both to one predecessor.

        A lock held until the unit of work ends, or, on a store without locks, a
        condition on the chain's head that `complete` carries: its commit then raises
        Conflict if another completion committed since, and the completion is retried.
        """
        ...

    def note_publication(self, period: str, problem: str | None) -> None:
        """Record in a completed run's `error` why its report is not published, or, with
        None, that it is. Changes nothing if the run is not completed."""
        ...


class ReportStore(Protocol):
    """Where payout reports go: a local folder or an S3 bucket."""

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        """Store `data` under `key` atomically: readers see all of it or nothing."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None:
        """Remove `key` if it is there (a staged copy once its report is published)."""
        ...

    def scratch(self) -> BinaryIO:
        """An empty temporary file, removed when closed, to render a report into
        before `put`: a report may be larger than memory should hold."""
        ...


class PayoutStarter(Protocol):
    """Starts a period's payout run somewhere else and returns at once: on AWS, an
    execution of the payout state machine, which loops the payout function until the
    run completes (a run can outlast a request by far)."""

    def start(self, period: str) -> str:
        """Start the run of `period` (`YYYY-MM`, ended), or find its start still under
        way: calling again while it runs starts nothing new. Returns what names the
        start (the execution's ARN)."""
        ...
