"""Monthly payouts: every reward paid exactly once, whatever crashes or concurrent runs.

A run claims its period with a lease, assigns eligible rewards to itself in
bounded batches, aggregates per referrer from what is assigned (so a resumed
run computes the same lines), stages the report under its hash, marks the
rewards paid and the run completed in one transaction, then publishes the
report to its deterministic key and removes the staged copy. Each step is safe
to repeat, so a crash anywhere followed by a re-run pays each reward once and
writes the same report bytes.

A run that stopped without completing (failed, or crashed and its lease expired)
keeps its rewards assigned to it: a later month is refused until it completes
(`EarlierRunFailed`), and the schedule runs it again first. A completed run whose
report is not published yet says so in its `error` until it is.
"""

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby

from referrals.domain import events
from referrals.domain.errors import (
    EarlierRunFailed,
    InvalidInput,
    NotFound,
    PayoutFailed,
    PayoutInProgress,
)
from referrals.domain.model import (
    REPORT_UNPUBLISHED,
    CurrencyTotal,
    Minimums,
    PayoutLine,
    PayoutRun,
    Referral,
    ReferralStatus,
    RunStatus,
    new_id,
)
from referrals.domain.money import DEFAULT_CURRENCY
from referrals.domain.periods import Period
from referrals.domain.reports import report_key, staged_key
from referrals.domain.run_totals import with_totals
from referrals.ports import Clock, LeaseLost, ReportStore, Store
from referrals.services.payout_reports import (
    CurrencyTally,
    ReportTotals,
    currencies,
    describe,
    drop_staged,
    mark_published,
    publish_or_note,
    put_manifest,
    render_report,
    unpublished,
)
from referrals.services.payout_reports import (
    publish_pending as publish_pending,  # where the schedule finds it
)
from referrals.services.retry import retry_on_conflict

logger = logging.getLogger("referrals.payouts")
LEASE = timedelta(seconds=30)  # a crashed run can be resumed within this
BATCH_SIZE = 20_000
HELD_SHOWN = 100  # held rewards a dry run lists


def _no_checkpoint(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PayoutPreview:
    period: str
    cutoff: datetime
    lines: list[PayoutLine]  # what the run would pay
    referrer_count: int
    referral_count: int
    # As a run's (PayoutRun): the one currency's figures, None with several currencies.
    total_cents: int | None
    clawback_cents: int | None
    carried_forward: list[PayoutLine]  # below the minimum (or negative): left for later
    carried_forward_cents: int | None
    held: list[Referral]  # the oldest rewards waiting for review, with their receipts
    held_count: int  # how many referrals are held in all (up to HELD_SHOWN + 1)
    totals: tuple[CurrencyTotal, ...]  # per currency, sorted: what a run's totals would be
    currencies: Mapping[str, str]  # each program's currency, by id: a line is in its program's
    # The period's run if there is one. Completed: the preview is what it paid, and
    # running it again changes nothing; running or failed: a run would resume it.
    status: RunStatus | None = None
    completed_at: datetime | None = None


def run_payout(
    store: Store,
    reports: ReportStore,
    clock: Clock,
    period: Period,
    *,
    owner: str | None = None,
    batch_size: int = BATCH_SIZE,
    minimum_cents: int | Minimums = 0,
    on_progress: Callable[[int], None] | None = None,
    checkpoint: Callable[[str], None] = _no_checkpoint,
    keep_going: Callable[[], bool] | None = None,
) -> PayoutRun:
    """Pay every unpaid reward earned before the period's cutoff; see the module doc.

    A user whose total in a program in the run is below the program's minimum
    (`minimum_cents`: one for every program, or each program's, see
    `programs.minimum_payouts`), or negative (clawbacks beyond their rewards), is
    carried forward: their entries there wait for a later run. A total of zero
    settles (a clawback offset by new rewards).

    `owner` names this attempt in the lease (the entry points pass one naming the
    machine and process, `adapters.host.attempt_owner`); by default a fresh id.

    `checkpoint` is called with the name of each step as it is reached; the
    crash tests kill the process there. With `keep_going`, the run stops
    between batches once it answers False and returns the run still `running`:
    the same `owner` calls again to continue (a Lambda's time limit).
    """
    now = clock.now()
    if not period.has_ended(now):
        raise InvalidInput(f"the period {period} has not ended yet")
    name, cutoff, owner = str(period), period.cutoff, owner or new_id(now)

    with store.unit_of_work() as uow:
        existing = uow.payouts.get(name)
        # What the attempt before this one failed with, if it failed: the same failure
        # again is not news (the schedule retries a failing month every minute).
        failed_with = existing.error if existing and existing.status is RunStatus.FAILED else None
        if existing is not None and existing.status is RunStatus.COMPLETED:
            done: PayoutRun | None = existing
        else:
            _refuse_after_unfinished(uow.payouts.list(), name, now)
            if not uow.payouts.claim(name, cutoff, owner, now, now + LEASE):
                raise PayoutInProgress(f"a payout run for {name} is in progress elsewhere")
            done = None
            uow.commit()
    if done is not None:
        # A crash, or the report store, may have come between completion and
        # publication: publish again (a no-op once the manifest is out).
        return publish_or_note(store, reports, done)
    checkpoint("claimed")

    completed: PayoutRun | None = None
    staged: str | None = None  # this attempt's staged copy, removed if it never completes
    try:
        if not _assign(
            store, clock, name, cutoff, owner, batch_size, on_progress, checkpoint, keep_going
        ):
            return get_run(store, period)
        checkpoint("assigned")
        deferred = _carry_forward(store, clock, name, owner, _minimums(minimum_cents))
        checkpoint("carried_forward")
        with reports.scratch() as report:
            totals = render_report(store, name, report)
            checkpoint("report_rendered")
            # Staged under its own hash before anything is paid: a store that is down
            # fails the run here, and an attempt that lost its lease (and will fail
            # to complete) can never overwrite the report of the run that completed.
            report.seek(0)
            staged = staged_key(name, totals.sha256)
            reports.put(staged, report, "text/csv")
            checkpoint("report_written")
            # A store without locks (DynamoDB) finds another completion committed since
            # it read the chain's head when it commits (Conflict): read the new head and
            # link to it.
            completed = retry_on_conflict(
                lambda: _complete(store, clock, name, owner, totals, deferred, checkpoint)
            )
            checkpoint("completed")
            report.seek(0)
            reports.put(report_key(name), report, "text/csv")
        checkpoint("report_published")
        put_manifest(reports, completed, totals.programs)
        checkpoint("manifest_written")
        return mark_published(store, reports, completed)
    except LeaseLost:
        drop_staged(reports, name, staged)  # the run that took over publishes its own
        raise PayoutInProgress(f"the lease on {name} was taken over") from None
    except Exception as error:
        if completed is not None:
            # Paid and completed; only publishing failed. The run says so, and the
            # schedule, the next run of the period or a request for its report
            # publishes it from the rewards.
            return unpublished(store, completed, error)
        drop_staged(reports, name, staged)
        _record_failure(store, clock, name, owner, describe(error), failed_with)
        raise PayoutFailed(
            f"the payout run for {name} failed and can be run again: {error}"
        ) from error


def unfinished(runs: Iterable[PayoutRun], now: datetime) -> list[PayoutRun]:
    """The runs that stopped without completing, oldest period first: failed, or running
    with a lease that expired (the attempt crashed). Their rewards stay assigned to them
    until they are run again."""
    return sorted((run for run in runs if _stopped(run, now)), key=lambda run: run.period)


def _stopped(run: PayoutRun, now: datetime) -> bool:
    if run.status is RunStatus.FAILED:
        return True
    expired = run.lease_expires_at is None or run.lease_expires_at < now
    return run.status is RunStatus.RUNNING and expired


def _refuse_after_unfinished(runs: Iterable[PayoutRun], period: str, now: datetime) -> None:
    """A later month waits for an earlier run that stopped: that run holds its rewards,
    and only it pays them (a reward is paid in exactly one run), so paying around it
    would leave them behind. An earlier run live elsewhere is no reason to wait."""
    earlier = next((run for run in unfinished(runs, now) if run.period < period), None)
    if earlier is None:
        return
    how = (
        f"failed ({earlier.error})"
        if earlier.status is RunStatus.FAILED
        else "stopped without completing (its lease expired)"
    )
    raise EarlierRunFailed(
        f"the payout run for {earlier.period} {how}: it holds its rewards, so it must"
        f" complete before {period} is paid; run {earlier.period} again first",
        earlier.period,
    )


def _assign(
    store: Store,
    clock: Clock,
    period: str,
    cutoff: datetime,
    owner: str,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
    checkpoint: Callable[[str], None],
    keep_going: Callable[[], bool] | None,
) -> bool:
    """Assign eligible rewards batch by batch; the lease is renewed in each batch's transaction.

    Renewing in the same transaction fences a run that lost its lease: its batch
    rolls back instead of assigning rewards behind the new owner's back.
    Returns False if `keep_going` stopped it before every reward was assigned.
    """
    total = 0
    after: str | None = None  # where the last batch stopped; a resumed run starts over
    while True:
        with store.unit_of_work() as uow:
            if not uow.payouts.renew(period, owner, clock.now() + LEASE):
                raise LeaseLost(period)
            moved, after = uow.payouts.assign_batch(period, cutoff, batch_size, after)
            checkpoint("assign_uncommitted")
            uow.commit()
        total += moved
        if on_progress:
            on_progress(total)
        checkpoint("assign_batch")
        if moved < batch_size:
            return True
        if keep_going is not None and not keep_going():
            return False


def _minimums(minimum_cents: int | Minimums) -> Minimums:
    return minimum_cents if isinstance(minimum_cents, Minimums) else Minimums({}, minimum_cents)


def _carry_forward(
    store: Store, clock: Clock, period: str, owner: str, minimums: Minimums
) -> dict[str, int]:
    """Send back to pending the entries of users who will not be paid this time; what
    that deferred, per currency.

    Runs after every batch is assigned, so a resumed run releases the same users
    again (their entries were re-assigned with the rest) and its totals match.
    """
    with store.unit_of_work() as uow:
        if not uow.payouts.renew(period, owner, clock.now() + LEASE):
            raise LeaseLost(period)
        known = currencies(uow)
        in_use = set(known.values()) or {DEFAULT_CURRENCY}
        # The store sums what it defers across programs; with programs in several
        # currencies, the same split of the assigned lines tells each currency's part
        # (read before the release changes them, in its unit of work).
        by_program = _deferred(uow.payouts.lines(period), minimums) if len(in_use) > 1 else {}
        _, cents = uow.payouts.release(period, minimums)
        uow.commit()
    if len(in_use) == 1:
        return {in_use.pop(): cents} if cents else {}
    by_currency: dict[str, int] = {}
    for program, deferred in by_program.items():
        currency = known.get(program, DEFAULT_CURRENCY)
        by_currency[currency] = by_currency.get(currency, 0) + deferred
    if sum(by_currency.values()) != cents:
        # The lines and the release disagree: never record a carry-forward it did not make.
        raise RuntimeError(f"carried forward {cents}, but the lines defer {by_currency}")
    return {currency: cents for currency, cents in by_currency.items() if cents}


def _complete(
    store: Store,
    clock: Clock,
    period: str,
    owner: str,
    totals: ReportTotals,
    deferred: Mapping[str, int],
    checkpoint: Callable[[str], None],
) -> PayoutRun:
    with store.unit_of_work() as uow:
        # Before the chain's head is read: two runs completing at once link one after
        # the other, never both to the same predecessor (the chain would fork).
        uow.payouts.lock_chain()
        run = uow.payouts.get(period)
        if run is None:
            raise NotFound(f"no payout run {period}")
        # Both links of the hash chain, read in the transaction that completes the run.
        previous = uow.payouts.completed_before(period)
        last = uow.payouts.last_completed()
        completed = replace(
            with_totals(run, totals.tally.totals(deferred)),
            status=RunStatus.COMPLETED,
            referrer_count=totals.referrer_count,
            referral_count=totals.referral_count,
            report_key=report_key(period),
            report_sha256=totals.sha256,
            previous_month_period=previous.period if previous else None,
            previous_month_sha256=previous.report_sha256 if previous else None,
            previous_period=last.period if last else None,
            previous_sha256=last.report_sha256 if last else None,
            completed_at=clock.now(),
            lease_owner=None,
            lease_expires_at=None,
            error=REPORT_UNPUBLISHED,  # until it is: a crash before then leaves it said
        )
        paid = uow.payouts.complete(completed, owner)
        if paid != totals.referral_count:
            # The report and the rows disagree: never mark paid what the report does not show.
            raise RuntimeError(f"report has {totals.referral_count} rewards, store {paid}")
        uow.outbox.add(events.payout_completed(completed, clock.now()))
        checkpoint("complete_uncommitted")
        uow.commit()
    return completed


def _record_failure(
    store: Store, clock: Clock, period: str, owner: str, error: str, failed_with: str | None
) -> None:
    """The run is failed with `error`; `payout.failed` is sent unless the attempt before
    failed with the same error (`failed_with`): one notice per failure, not per retry."""
    error = error[:1000]
    with store.unit_of_work() as uow:
        uow.payouts.fail(period, owner, error)
        if error != failed_with:
            uow.outbox.add(events.payout_failed(period, error, clock.now()))
        else:
            logger.warning("payout %s failed again: %s", period, error)
        uow.commit()


def preview_payout(
    store: Store, clock: Clock, period: Period, minimum_cents: int | Minimums = 0
) -> PayoutPreview:
    """What a run would pay now, computed without writing anything: the lines, the
    users carried forward, and the rewards held for review that it would leave out.

    Of a completed period: what its run paid (`status` completed), as its report has it.
    """
    if not period.has_ended(clock.now()):
        raise InvalidInput(f"the period {period} has not ended yet")
    with store.read() as uow:
        known = currencies(uow)
        run = uow.payouts.get(str(period))
        if run is not None and run.status is RunStatus.COMPLETED:
            return _paid(run, list(uow.payouts.lines(str(period))), known)
        lines, carried, deferred = _split_carried(
            uow.payouts.preview(str(period), period.cutoff), _minimums(minimum_cents)
        )
        held = list(uow.referrals.search(ReferralStatus.HELD, None, None, HELD_SHOWN + 1))
    tally = CurrencyTally(known)
    for line in lines:
        tally.add(line)
    deferred_by_currency: dict[str, int] = {}
    for program, cents in deferred.items():
        currency = tally.currency(program)
        deferred_by_currency[currency] = deferred_by_currency.get(currency, 0) + cents
    totals = tally.totals(deferred_by_currency)
    one = _one_currency(totals)
    return PayoutPreview(
        period=str(period),
        cutoff=period.cutoff,
        lines=lines,
        referrer_count=len({line.referrer_id for line in lines}),
        referral_count=sum(line.referral_count for line in lines),
        total_cents=one.total_cents if one else None,
        clawback_cents=one.clawback_cents if one else None,
        carried_forward=carried,
        carried_forward_cents=one.carried_forward_cents if one else None,
        held=held[:HELD_SHOWN],
        held_count=len(held),
        totals=totals,
        currencies=known,
        status=run.status if run is not None else None,
    )


def _one_currency(totals: tuple[CurrencyTotal, ...]) -> CurrencyTotal | None:
    """The figures of the one currency in `totals` (zeros with none); None with several."""
    if len(totals) > 1:
        return None
    return totals[0] if totals else CurrencyTotal(DEFAULT_CURRENCY)


def _paid(run: PayoutRun, lines: list[PayoutLine], known: Mapping[str, str]) -> PayoutPreview:
    """A completed run as a preview: its lines and the totals it recorded."""
    return PayoutPreview(
        period=run.period,
        cutoff=run.cutoff,
        lines=lines,
        referrer_count=run.referrer_count,
        referral_count=run.referral_count,
        total_cents=run.total_cents,
        clawback_cents=run.clawback_cents,
        carried_forward=[],
        carried_forward_cents=run.carried_forward_cents,
        held=[],
        held_count=0,
        totals=run.totals,
        currencies=known,
        status=run.status,
        completed_at=run.completed_at,
    )


def _split_carried(
    lines: Iterable[PayoutLine], minimums: Minimums
) -> tuple[list[PayoutLine], list[PayoutLine], dict[str, int]]:
    """Lines a run would pay, lines of users it would carry forward, and the money
    deferred per program: as `release` counts it, the carried users' totals, debts
    aside."""
    paid: list[PayoutLine] = []
    carried: list[PayoutLine] = []
    deferred: dict[str, int] = {}
    for program, user_lines, total in _per_user(lines):
        if total < minimums.floor(program):
            carried.extend(user_lines)
            deferred[program] = deferred.get(program, 0) + max(total, 0)
        else:
            paid.extend(user_lines)
    return paid, carried, deferred


def _deferred(lines: Iterable[PayoutLine], minimums: Minimums) -> dict[str, int]:
    """`_split_carried`'s money deferred per program, in constant memory (a run's lines)."""
    deferred: dict[str, int] = {}
    for program, _, total in _per_user(lines):
        if total < minimums.floor(program):
            deferred[program] = deferred.get(program, 0) + max(total, 0)
    return deferred


def _per_user(lines: Iterable[PayoutLine]) -> Iterator[tuple[str, list[PayoutLine], int]]:
    """Each user's lines in a program (a reward line, a clawback line), with their sum."""
    for (_, program), group in groupby(lines, key=lambda line: (line.referrer_id, line.program_id)):
        user_lines = list(group)
        yield program, user_lines, sum(line.amount_cents for line in user_lines)


def get_run(store: Store, period: Period) -> PayoutRun:
    with store.read() as uow:
        run = uow.payouts.get(str(period))
    if run is None:
        raise NotFound(f"no payout run for {period}")
    return run


def list_runs(store: Store) -> list[PayoutRun]:
    with store.read() as uow:
        return list(uow.payouts.list())


def alerts(store: Store) -> list[PayoutRun]:
    """What an operator must be told, oldest month first: the runs that failed (the
    schedule runs them again, and no later month is paid until they complete), and the
    completed runs whose report is not published."""
    return sorted(
        (
            run
            for run in list_runs(store)
            if run.status is RunStatus.FAILED
            or (run.status is RunStatus.COMPLETED and not run.report_published)
        ),
        key=lambda run: run.period,
    )
