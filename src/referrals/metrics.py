"""Prometheus metrics: signups and rewards, payout runs, the outbox, and the HTTP traffic
counters the API's middleware feeds.

Both the API and the background worker (`referrals.worker`) count into one `Metrics`,
so this module depends on neither. Each app has its own registry (`app.state.metrics`),
so apps built in one process (tests, several stores) never share or collide on
counters. Under `referrals serve --workers N` each worker process counts its own.
"""

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from referrals.domain.errors import PayoutFailed
from referrals.domain.model import EventStatus, PayoutRun, RunStatus
from referrals.domain.money import DEFAULT_CURRENCY
from referrals.ports import Clock, Store
from referrals.services.signups import SignupResult

logger = logging.getLogger("referrals.metrics")
R = TypeVar("R", bound=PayoutRun | None)

# Dead letters are counted by listing them: a bound keeps a scrape cheap. Past it the
# gauge reads the bound, which is already an alarm.
DEAD_LETTERS_COUNTED = 10_000
PAYOUT_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200)


class Metrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "referrals_http_requests_total",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "referrals_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            registry=r,
        )
        self.signups = Counter(
            "referrals_signups_total", "Signups recorded (replays not counted).", registry=r
        )
        # By currency: each in its own minor units, never summed across currencies.
        self.reward_cents = Counter(
            "referrals_reward_cents_total",
            "Reward minor units (cents for USD) earned by recorded signups, by currency.",
            ["currency"],
            registry=r,
        )
        self.payout_cents = Counter(
            "referrals_payout_cents_total",
            "Minor units paid out by payout runs completed here, by currency.",
            ["currency"],
            registry=r,
        )
        self.payout_runs = Counter(
            "referrals_payout_runs_total",
            "Payout runs started here (by the API or the schedule), by outcome.",
            ["status"],
            registry=r,
        )
        self.payout_seconds = Histogram(
            "referrals_payout_run_duration_seconds",
            "Time a payout run took, by outcome.",
            ["status"],
            buckets=PAYOUT_BUCKETS,
            registry=r,
        )
        self._store = store
        self._currencies: dict[str, str] = {}  # by program: a program's never changes
        r.register(OutboxCollector(store))
        r.register(PayoutCollector(store))
        # Label lookups take a lock and validate; the label sets are few, so the
        # children are kept here for the per-request path.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def signed_up(self, result: SignupResult) -> None:
        if not result.replayed:  # a replay earned nothing new
            self.signups.inc()
            currency = self._currency(result.referral.program_id)
            self.reward_cents.labels(currency).inc(result.referral.reward_cents)

    def _currency(self, program_id: str) -> str:
        """The program's currency, read once per program (it never changes). Counted
        after the signup committed, so a failed read never fails the signup."""
        known = self._currencies.get(program_id)
        if known is not None:
            return known
        try:
            with self._store.read() as uow:
                program = uow.programs.get(program_id)
        except Exception as error:
            logger.warning("program currency unavailable: %s", type(error).__name__)
            return "unknown"
        currency = program.currency if program else DEFAULT_CURRENCY
        self._currencies[program_id] = currency
        return currency

    def payout(self, clock: Clock, work: Callable[[], R]) -> R:
        """Do `work`, a payout run, and count and time it by outcome.

        A run refused (in progress elsewhere, period not ended) or one that returns
        no run or a run completed earlier is not counted: nothing was paid.
        """
        since, started = clock.now(), time.perf_counter()
        try:
            run = work()
        except PayoutFailed:
            self._payout_run("failed", time.perf_counter() - started)
            raise
        if run is not None and run.started_at >= since:
            self._payout_run(run.status.value, time.perf_counter() - started)
            if run.status is RunStatus.COMPLETED:
                for total in run.totals:
                    # Never negative: users owing are carried forward, not charged.
                    self.payout_cents.labels(total.currency).inc(max(total.total_cents, 0))
        return run

    def _payout_run(self, status: str, seconds: float) -> None:
        self.payout_runs.labels(status).inc()
        self.payout_seconds.labels(status).observe(seconds)


class OutboxCollector:
    """The outbox gauges, read from the store at each scrape (any process may deliver)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            with self.store.read() as uow:
                backlog = uow.outbox.backlog()
                dead = len(uow.outbox.list(EventStatus.DEAD, DEAD_LETTERS_COUNTED))
        except Exception as error:
            # The database being down must not cost the scrape the request counters
            # that show the outage: the gauges are left out (and /healthz says 503).
            logger.warning("outbox metrics unavailable: %s", type(error).__name__)
            return
        yield GaugeMetricFamily(
            "referrals_outbox_backlog", "Notification events waiting for delivery.", value=backlog
        )
        yield GaugeMetricFamily(
            "referrals_outbox_dead_letters",
            f"Notification events that gave up (counted up to {DEAD_LETTERS_COUNTED}).",
            value=dead,
        )


class PayoutCollector:
    """The payout alert gauges, read from the store at each scrape: a run that failed (the
    schedule tries it again every minute, and no later month is paid until it completes)
    and a completed run whose report is not published yet. Alert on either above zero."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            with self.store.read() as uow:
                runs = list(uow.payouts.list())  # one a month: a handful of rows
        except Exception as error:
            logger.warning("payout metrics unavailable: %s", type(error).__name__)
            return
        failed = sum(run.status is RunStatus.FAILED for run in runs)
        unpublished = sum(
            run.status is RunStatus.COMPLETED and not run.report_published for run in runs
        )
        yield GaugeMetricFamily(
            "referrals_payout_runs_failed",
            "Payout runs that failed and have not completed since (their rewards wait).",
            value=failed,
        )
        yield GaugeMetricFamily(
            "referrals_payout_reports_unpublished",
            "Completed payout runs whose report is not in the report store yet.",
            value=unpublished,
        )
