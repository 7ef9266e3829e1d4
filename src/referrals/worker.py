"""Background work inside `referrals serve`: outbox delivery and pruning, and the monthly
payout schedule."""

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from referrals.adapters.host import attempt_owner
from referrals.bootstrap import Services
from referrals.domain.errors import DomainError
from referrals.domain.model import PayoutRun
from referrals.domain.money import format_amounts
from referrals.metrics import Metrics
from referrals.services.outbox import PRUNE_BATCH, PRUNE_BATCHES, dispatch, prune
from referrals.services.schedule import run_due_payout

logger = logging.getLogger("referrals.worker")
T = TypeVar("T")
DISPATCH_BATCH = 100
# While events keep coming, the next delivery comes this soon: a second's events
# delivered in one burst hold the interpreter lock long enough to delay the requests
# arriving meanwhile (BENCHMARKS.md, "Outbox delivery at a steady pace"). An idle
# server still asks only once per `dispatch_every`.
BUSY_DISPATCH_EVERY = 0.1
# Delivered events go after days: pruning hourly keeps the outbox within an hour of its
# retention, each round bounded (services.outbox.prune); a round that hit its bound
# (a backlog, e.g. on the first start after an upgrade) is followed by another at once.
PRUNE_EVERY = 3600.0


class BackgroundWorker:
    def __init__(
        self,
        services: Services,
        dispatch_every: float = 1.0,
        schedule_every: float = 60.0,
        metrics: Metrics | None = None,
        busy_dispatch_every: float = BUSY_DISPATCH_EVERY,
        prune_every: float = PRUNE_EVERY,
    ) -> None:
        self.services = services
        self.prune_every = prune_every
        self.metrics = metrics
        self.dispatch_every = dispatch_every
        self.busy_dispatch_every = min(busy_dispatch_every, dispatch_every)
        self.schedule_every = schedule_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="referrals-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        svc = self.services
        next_schedule = next_prune = time.monotonic()
        while not self._stop.is_set():
            if svc.settings.scheduler and time.monotonic() >= next_schedule:
                next_schedule = time.monotonic() + self.schedule_every
                self._guard("scheduled payout", self._run_schedule)
            busy = self._guard("outbox dispatch", self._dispatch)
            if time.monotonic() >= next_prune:
                more = self._guard("outbox pruning", self._prune)
                next_prune = time.monotonic() + (0 if more else self.prune_every)
            self._stop.wait(self.busy_dispatch_every if busy else self.dispatch_every)

    def _run_schedule(self) -> None:
        svc = self.services

        def due() -> PayoutRun | None:
            return run_due_payout(
                svc.store,
                svc.reports,
                svc.clock,
                svc.settings.payout_batch_size,
                svc.rules.minimums(),
                owner=attempt_owner(svc.clock.now()),
            )

        run = self.metrics.payout(svc.clock, due) if self.metrics else due()
        if run is not None:
            # Per currency, never one sum: a run may pay dollars and yen.
            paid = format_amounts((t.currency, t.total_cents) for t in run.totals)
            logger.info("scheduled payout %s completed: %s", run.period, paid)

    def _dispatch(self) -> bool:
        """Deliver what is due; whether anything was delivered."""
        svc = self.services
        delivered = False
        # A full batch means there may be more; a partial one waits for the next tick,
        # so a trickle of events is delivered in batches, not one transaction each.
        while True:
            result = dispatch(svc.store, svc.notifier, svc.clock, svc.retry_policy, DISPATCH_BATCH)
            delivered = delivered or result.delivered > 0
            if result.delivered + result.failed < DISPATCH_BATCH:
                return delivered

    def _prune(self) -> bool:
        """Delete the delivered events past their retention; whether more may be left."""
        svc = self.services
        days = svc.settings.outbox_retention_days
        pruned = prune(svc.store, svc.clock, timedelta(days=days))
        if pruned:
            logger.info("pruned %d delivered events older than %d days", pruned, days)
        return pruned >= PRUNE_BATCH * PRUNE_BATCHES

    def _guard(self, what: str, work: Callable[[], T]) -> T | None:
        # A failing notifier or store must not kill the thread: log and try next time.
        try:
            return work()
        except DomainError as error:
            logger.warning("%s: %s", what, error.detail)
        except Exception:
            logger.exception("%s failed", what)
        return None
