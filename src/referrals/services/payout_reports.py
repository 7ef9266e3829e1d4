"""A payout run's report and manifest: rendered from the rewards assigned to the run,
summed per program and per currency, and published to the report store.

Rendering reads the run's lines from the store, never from memory of the run, so a
report rendered again (the attempt that completed crashed before publishing) has the
same bytes and hash. Every sum is per currency: a run pays programs in different
currencies, and never adds one currency to another.
"""

import hashlib
import io
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import IO

from referrals.domain.errors import NotFound
from referrals.domain.model import CurrencyTotal, LineKind, PayoutLine, PayoutRun, RunStatus
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
from referrals.ports import ReportStore, Store, UnitOfWork

logger = logging.getLogger("referrals.payouts")


def currencies(uow: UnitOfWork) -> dict[str, str]:
    """Each program's currency, by program id: a handful of programs."""
    return {program.id: program.currency for program in uow.programs.list()}


class CurrencyTally:
    """Sums payout lines per currency as they stream by (grouped by user, as stores give
    them): one entry per currency, whatever the number of lines."""

    def __init__(self, currencies: Mapping[str, str]) -> None:
        self._currencies = currencies
        self._sums: dict[str, list[int]] = {}  # users, entries, total, clawed back
        self._last_user: dict[str, str] = {}

    def currency(self, program_id: str) -> str:
        return self._currencies.get(program_id, DEFAULT_CURRENCY)

    def add(self, line: PayoutLine) -> None:
        currency = self.currency(line.program_id)
        sums = self._sums.setdefault(currency, [0, 0, 0, 0])
        # A user's lines come together: a user is counted once per currency they are paid in.
        sums[0] += self._last_user.get(currency) != line.referrer_id
        self._last_user[currency] = line.referrer_id
        sums[1] += line.referral_count
        sums[2] += line.amount_cents
        if line.kind is LineKind.CLAWBACK:
            sums[3] -= line.amount_cents

    def totals(self, deferred: Mapping[str, int] | None = None) -> tuple[CurrencyTotal, ...]:
        """Per currency that has a line or money `deferred` (carried forward, per
        currency), sorted by currency."""
        deferred = {currency: cents for currency, cents in (deferred or {}).items() if cents}
        totals = []
        for currency in sorted(self._sums.keys() | deferred.keys()):
            users, entries, total, clawed = self._sums.get(currency, [0, 0, 0, 0])
            carried = deferred.get(currency, 0)
            totals.append(CurrencyTotal(currency, users, entries, total, clawed, carried))
        return tuple(totals)


@dataclass(frozen=True, slots=True)
class ReportTotals:
    referrer_count: int  # users paid, whatever the currency
    referral_count: int  # entries settled: rewards and clawbacks
    sha256: str
    programs: tuple[ProgramTotal, ...]  # the lines summed per program, in its currency
    tally: CurrencyTally  # the lines summed per currency


def render_report(store: Store, period: str, out: IO[bytes]) -> ReportTotals:
    """Write the period's report to `out`; its totals and hash."""
    digest = hashlib.sha256()
    users = entries = 0
    last_user: str | None = None
    # Per program, not per user: as many entries as programs, whatever the run's size.
    per_program: dict[str, list[int]] = {}

    with store.read() as uow:
        known = currencies(uow)
        tally = CurrencyTally(known)

        def counted(lines: Iterator[PayoutLine]) -> Iterator[PayoutLine]:
            nonlocal users, entries, last_user
            for line in lines:
                # Lines come grouped by user: count users as they change, in constant memory.
                users += line.referrer_id != last_user
                last_user = line.referrer_id
                entries += line.referral_count
                tally.add(line)
                sums = per_program.setdefault(line.program_id, [0, 0])
                sums[0] += 1
                sums[1] += line.amount_cents
                yield line

        for chunk in render_csv(period, counted(uow.payouts.lines(period)), known):
            digest.update(chunk)
            out.write(chunk)
    programs = tuple(
        ProgramTotal(program, tally.currency(program), lines, cents)
        for program, (lines, cents) in sorted(per_program.items())
    )
    out.flush()
    return ReportTotals(users, entries, digest.hexdigest(), programs, tally)


def put_manifest(reports: ReportStore, run: PayoutRun, programs: tuple[ProgramTotal, ...]) -> None:
    manifest = io.BytesIO(render_manifest(run, programs))
    reports.put(manifest_key(run.period), manifest, "application/json")


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
            totals = render_report(store, run.period, report)
            if totals.sha256 != run.report_sha256:
                raise RuntimeError(f"the rewards of {run.period} no longer match its report")
            report.seek(0)
            reports.put(report_key(run.period), report, "text/csv")
        put_manifest(reports, run, totals.programs)
    return mark_published(store, reports, run)


def publish_pending(store: Store, reports: ReportStore) -> list[PayoutRun]:
    """Publish the report of every completed run that says it is not published; the
    runs as they are after trying, each saying whether it now is."""
    with store.read() as uow:
        waiting = [r for r in uow.payouts.list() if r.status is RunStatus.COMPLETED and r.error]
    return [publish_or_note(store, reports, run) for run in sorted(waiting, key=_period)]


def _period(run: PayoutRun) -> str:
    return run.period


def publish_or_note(store: Store, reports: ReportStore, run: PayoutRun) -> PayoutRun:
    try:
        return publish(store, reports, run)
    except Exception as error:
        return unpublished(store, run, error)


def mark_published(store: Store, reports: ReportStore, run: PayoutRun) -> PayoutRun:
    """The report and manifest are out: drop the staged copy, then say so in the run."""
    if run.report_sha256:
        drop_staged(reports, run.period, staged_key(run.period, run.report_sha256))
    if run.error is not None:
        with store.unit_of_work() as uow:
            uow.payouts.note_publication(run.period, None)
            uow.commit()
    return replace(run, error=None)


def drop_staged(reports: ReportStore, period: str, key: str | None) -> None:
    """Remove a staged copy: nothing reads it (a report is published from the attempt's
    own file, or rendered again), it only proved the report store took the report."""
    if key is None:
        return
    try:
        reports.delete(key)
    except Exception as error:  # a copy too many, not a report missing
        logger.warning("payout %s: the staged report %s stays: %s", period, key, error)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def unpublished(store: Store, run: PayoutRun, error: BaseException) -> PayoutRun:
    """A completed run whose report could not be published: the run says why."""
    problem = f"report not published: {describe(error)}"[:1000]
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


def get_report(store: Store, reports: ReportStore, period: Period) -> bytes:
    """The CSV report of a completed period, published again if it went missing."""
    return _published(store, reports, period, report_key(str(period)))


def get_manifest(store: Store, reports: ReportStore, period: Period) -> bytes:
    """The manifest (JSON) of a completed period's report, published again if missing."""
    return _published(store, reports, period, manifest_key(str(period)))


def _published(store: Store, reports: ReportStore, period: Period, key: str) -> bytes:
    with store.read() as uow:
        run = uow.payouts.get(str(period))
    if run is None:
        raise NotFound(f"no payout run for {period}")
    if run.status is not RunStatus.COMPLETED or run.report_key is None:
        raise NotFound(f"no report for {period}: the run is {run.status}")
    data = reports.get(key)
    if data is None:
        publish(store, reports, run)
        data = reports.get(key)
    if data is None:
        raise NotFound(f"no report for {period}")
    return data
