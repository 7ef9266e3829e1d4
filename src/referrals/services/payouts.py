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

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import IO

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
    LineKind,
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
from referrals.domain.reports import (
    ProgramTotal,
    manifest_key,
    render_csv,
    render_manifest,
    report_key,
    staged_key,
)
from referrals.ports import Clock, LeaseLost, ReportStore, Store, UnitOfWork
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
    total_cents: int
    clawback_cents: int
    carried_forward: list[PayoutLine]  # below the minimum (or negative): left for later
    carried_forward_cents: int
    held: list[Referral]  # the oldest rewards waiting for review, with their receipts
    held_count: int  # how many referrals are held in all (up to HELD_SHOWN + 1)
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
        return _publish_or_note(store, reports, done)
    checkpoint("claimed")

    completed: PayoutRun | None = None
    staged: str | None = None  # this attempt's staged copy, removed if it never completes
    try:
        if not _assign(
            store, clock, name, cutoff, owner, batch_size, on_progress, checkpoint, keep_going
        ):
            return get_run(store, period)
        checkpoint("assigned")
        carried = _carry_forward(store, clock, name, owner, _minimums(minimum_cents))
        checkpoint("carried_forward")
        with reports.scratch() as report:
            totals = _render_report(store, name, report)
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
                lambda: _complete(store, clock, name, owner, totals, carried, checkpoint)
            )
            checkpoint("completed")
            report.seek(0)
            reports.put(report_key(name), report, "text/csv")
        checkpoint("report_published")
        _put_manifest(reports, completed, totals.programs)
        checkpoint("manifest_written")
        return _mark_published(store, reports, completed)
    except LeaseLost:
        _drop_staged(reports, name, staged)  # the run that took over publishes its own
        raise PayoutInProgress(f"the lease on {name} was taken over") from None
    except Exception as error:
        if completed is not None:
            # Paid and completed; only publishing failed. The run says so, and the
            # schedule, the next run of the period or a request for its report
            # publishes it from the rewards.
            return _unpublished(store, completed, error)
        _drop_staged(reports, name, staged)
        _record_failure(store, clock, name, owner, _describe(error), failed_with)
        raise PayoutFailed(
            f"the payout run for {name} failed and can be run again: {error}"
        ) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


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


def _carry_forward(store: Store, clock: Clock, period: str, owner: str, minimums: Minimums) -> int:
    """Send back to pending the entries of users who will not be paid this time.

    Runs after every batch is assigned, so a resumed run releases the same users
    again (their entries were re-assigned with the rest) and its totals match.
    """
    with store.unit_of_work() as uow:
        if not uow.payouts.renew(period, owner, clock.now() + LEASE):
            raise LeaseLost(period)
        _, cents = uow.payouts.release(period, minimums)
        uow.commit()
    return cents


@dataclass(frozen=True, slots=True)
class _Totals:
    referrer_count: int  # users paid
    referral_count: int  # entries settled: rewards and clawbacks
    total_cents: int  # what the run pays out: rewards less clawbacks
    clawback_cents: int
    sha256: str
    programs: tuple[ProgramTotal, ...]  # the same lines, summed per program


def _render_report(store: Store, period: str, out: IO[bytes]) -> _Totals:
    digest = hashlib.sha256()
    users = entries = total = clawed = 0
    last_user: str | None = None
    # Per program, not per user: as many entries as programs, whatever the run's size.
    per_program: dict[str, list[int]] = {}

    def counted(lines: Iterator[PayoutLine]) -> Iterator[PayoutLine]:
        nonlocal users, entries, total, clawed, last_user
        for line in lines:
            # Lines come grouped by user: count users as they change, in constant memory.
            users += line.referrer_id != last_user
            last_user = line.referrer_id
            entries += line.referral_count
            total += line.amount_cents
            if line.kind is LineKind.CLAWBACK:
                clawed -= line.amount_cents
            sums = per_program.setdefault(line.program_id, [0, 0])
            sums[0] += 1
            sums[1] += line.amount_cents
            yield line

    with store.read() as uow:
        for chunk in render_csv(period, counted(uow.payouts.lines(period))):
            digest.update(chunk)
            out.write(chunk)
        programs = tuple(
            ProgramTotal(program, _currency(uow, program), lines, cents)
            for program, (lines, cents) in sorted(per_program.items())
        )
    out.flush()
    return _Totals(users, entries, total, clawed, digest.hexdigest(), programs)


def _currency(uow: UnitOfWork, program_id: str) -> str:
    program = uow.programs.get(program_id)
    return program.currency if program else DEFAULT_CURRENCY


def _complete(
    store: Store,
    clock: Clock,
    period: str,
    owner: str,
    totals: _Totals,
    carried_forward_cents: int,
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
            run,
            status=RunStatus.COMPLETED,
            referrer_count=totals.referrer_count,
            referral_count=totals.referral_count,
            total_cents=totals.total_cents,
            clawback_cents=totals.clawback_cents,
            carried_forward_cents=carried_forward_cents,
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


def publish(store: Store, reports: ReportStore, run: PayoutRun) -> PayoutRun:
    """Make sure a completed run's report and manifest are in the report store, and
    return the run as it then is: saying its report is published.

    The completing attempt publishes them right after completion; if it crashed
    in between, the report is rendered again from the run's rewards, which no
    longer change, and must hash to what the run recorded. A manifest already
    published for this report stays as it is, even one written by an earlier
    release in another shape: what was published is never rewritten.
    """
    if _published_sha256(reports.get(manifest_key(run.period))) != run.report_sha256:
        with reports.scratch() as report:
            totals = _render_report(store, run.period, report)
            if totals.sha256 != run.report_sha256:
                raise RuntimeError(f"the rewards of {run.period} no longer match its report")
            report.seek(0)
            reports.put(report_key(run.period), report, "text/csv")
        _put_manifest(reports, run, totals.programs)
    return _mark_published(store, reports, run)


def publish_pending(store: Store, reports: ReportStore) -> list[PayoutRun]:
    """Publish the report of every completed run that says it is not published; the
    runs as they are after trying, each saying whether it now is."""
    with store.read() as uow:
        waiting = [r for r in uow.payouts.list() if r.status is RunStatus.COMPLETED and r.error]
    return [_publish_or_note(store, reports, run) for run in sorted(waiting, key=_period)]


def _period(run: PayoutRun) -> str:
    return run.period


def _publish_or_note(store: Store, reports: ReportStore, run: PayoutRun) -> PayoutRun:
    try:
        return publish(store, reports, run)
    except Exception as error:
        return _unpublished(store, run, error)


def _mark_published(store: Store, reports: ReportStore, run: PayoutRun) -> PayoutRun:
    """The report and manifest are out: drop the staged copy, then say so in the run."""
    if run.report_sha256:
        _drop_staged(reports, run.period, staged_key(run.period, run.report_sha256))
    if run.error is not None:
        with store.unit_of_work() as uow:
            uow.payouts.note_publication(run.period, None)
            uow.commit()
    return replace(run, error=None)


def _drop_staged(reports: ReportStore, period: str, key: str | None) -> None:
    """Remove a staged copy: nothing reads it (a report is published from the attempt's
    own file, or rendered again), it only proved the report store took the report."""
    if key is None:
        return
    try:
        reports.delete(key)
    except Exception as error:  # a copy too many, not a report missing
        logger.warning("payout %s: the staged report %s stays: %s", period, key, error)


def _unpublished(store: Store, run: PayoutRun, error: BaseException) -> PayoutRun:
    """A completed run whose report could not be published: the run says why."""
    problem = f"report not published: {_describe(error)}"[:1000]
    logger.warning("payout %s completed but its report is not published: %s", run.period, error)
    if problem == run.error:
        return run  # said already (the schedule tries again every minute)
    try:
        with store.unit_of_work() as uow:
            uow.payouts.note_publication(run.period, problem)
            uow.commit()
    except Exception as noting:
        # The run keeps saying REPORT_UNPUBLISHED (set as it completed): still true.
        logger.warning("payout %s: could not record why: %s", run.period, noting)
    return replace(run, error=problem)


def _published_sha256(manifest: bytes | None) -> str | None:
    """The report hash a published manifest names (the manifest is put after its report)."""
    try:
        return str(json.loads(manifest)["sha256"]) if manifest else None
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: published again


def _put_manifest(reports: ReportStore, run: PayoutRun, programs: tuple[ProgramTotal, ...]) -> None:
    manifest = io.BytesIO(render_manifest(run, programs))
    reports.put(manifest_key(run.period), manifest, "application/json")


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
        run = uow.payouts.get(str(period))
        if run is not None and run.status is RunStatus.COMPLETED:
            return _paid(run, list(uow.payouts.lines(str(period))))
        lines, carried, deferred = _split_carried(
            uow.payouts.preview(str(period), period.cutoff), _minimums(minimum_cents)
        )
        held = list(uow.referrals.search(ReferralStatus.HELD, None, None, HELD_SHOWN + 1))
    return PayoutPreview(
        period=str(period),
        cutoff=period.cutoff,
        lines=lines,
        referrer_count=len({line.referrer_id for line in lines}),
        referral_count=sum(line.referral_count for line in lines),
        total_cents=sum(line.amount_cents for line in lines),
        clawback_cents=-sum(line.amount_cents for line in lines if line.kind is LineKind.CLAWBACK),
        carried_forward=carried,
        carried_forward_cents=deferred,
        held=held[:HELD_SHOWN],
        held_count=len(held),
        status=run.status if run is not None else None,
    )


def _paid(run: PayoutRun, lines: list[PayoutLine]) -> PayoutPreview:
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
        status=run.status,
        completed_at=run.completed_at,
    )


def _split_carried(
    lines: Iterable[PayoutLine], minimums: Minimums
) -> tuple[list[PayoutLine], list[PayoutLine], int]:
    """Lines a run would pay, lines of users it would carry forward, and the money
    deferred: as `release` counts it, the carried users' totals per program, debts
    aside."""
    paid: list[PayoutLine] = []
    carried: list[PayoutLine] = []
    deferred = 0
    for (_, program), group in groupby(lines, key=lambda line: (line.referrer_id, line.program_id)):
        user_lines = list(group)
        total = sum(line.amount_cents for line in user_lines)
        if total < minimums.floor(program):
            carried.extend(user_lines)
            deferred += max(total, 0)
        else:
            paid.extend(user_lines)
    return paid, carried, deferred


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
        key=_period,
    )


def get_report(store: Store, reports: ReportStore, period: Period) -> bytes:
    """The CSV report of a completed period, published again if it went missing."""
    return _published(store, reports, period, report_key(str(period)))


def get_manifest(store: Store, reports: ReportStore, period: Period) -> bytes:
    """The manifest (JSON) of a completed period's report, published again if missing."""
    return _published(store, reports, period, manifest_key(str(period)))


def _published(store: Store, reports: ReportStore, period: Period, key: str) -> bytes:
    run = get_run(store, period)
    if run.status is not RunStatus.COMPLETED or run.report_key is None:
        raise NotFound(f"no report for {period}: the run is {run.status}")
    data = reports.get(key)
    if data is None:
        publish(store, reports, run)
        data = reports.get(key)
    if data is None:
        raise NotFound(f"no report for {period}")
    return data
