"""Clicks written behind the redirect, inside `referrals serve`: a bounded buffer in this
process that a thread of its own writes in batches.

A click written in a transaction of its own costs `GET /l/{code}` two to three times
a `/healthz` (a commit per click: SQLite's write lock, PostgreSQL's WAL flush); issue
25 asks for a click that costs about nothing (BENCHMARKS.md, "Tracked-link clicks";
docs/decisions/click-write-behind.md). So the redirect hands its click to `record`,
which appends it to the buffer and returns at once, and the thread writes what is
buffered in one transaction per `batch` clicks, every `every` seconds, or at once
when a batch is full.

What this costs, and why it is acceptable:
- A click is in the database up to `every` (0.1 s) after its redirect. A signup that
  names it sooner does not find it; a person cannot click, load the landing page and
  send its signup form in 0.1 s, and the landing URL carries the code too, so such a
  signup still goes on by its code.
- The buffer is bounded (`capacity`): when the store cannot keep up, a click is
  dropped (counted in `referrals_clicks_dropped_total{reason="full"}`, logged once
  per flush) rather than the redirect made to wait or the memory to grow. The visitor
  is sent on without a click id, as over the click limit.
- A batch the store refuses is dropped (`reason="store"`), as the redirect itself
  dropped its click when the store could not take it.
- A clean stop (SIGTERM) writes what is buffered before the process exits; a crash
  loses at most the clicks of one interval. Clicks are the funnel's analytics,
  never money: no reward depends on a click being kept.
- Each server process (`--workers N`, several machines) has its own buffer and
  thread: nothing is shared, nothing to coordinate.

Not used where no thread outlives a response (AWS Lambda): there the redirect writes
its click itself (`create_app` without `background`).
"""

import logging
import threading
from collections import deque

from prometheus_client import Counter

from referrals.domain.clicks import Click
from referrals.metrics import Metrics
from referrals.ports import Store

logger = logging.getLogger("referrals.clicks")

FLUSH_EVERY = 0.1  # seconds: a click is in the database this soon after its redirect
# Clicks a transaction, a full batch written at once: DynamoDB's limit of a transaction
# (100 items); on SQL, two transactions a tenth of a second at 2,000 clicks a second.
BATCH = 100
CAPACITY = 20_000  # clicks buffered at most: a few seconds of a server's peak
STOP_TIMEOUT = 10.0  # seconds a stop waits for the last batches to be written


class ClickWriter:
    """Buffers clicks (`record`) and writes them from a thread (`start`, `stop`)."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics | None = None,
        every: float = FLUSH_EVERY,
        batch: int = BATCH,
        capacity: int = CAPACITY,
    ) -> None:
        self.store = store
        self.every = every
        self.batch = batch
        self.capacity = capacity
        self.written = 0
        self.dropped = 0
        self._pending: deque[Click] = deque()
        self._lock = threading.Lock()
        self._accepting = False
        self._full = 0  # dropped for a full buffer since the last log line
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="referrals-clicks", daemon=True)
        self._counted: tuple[Counter, Counter] | None = None
        if metrics is not None:
            written = Counter(
                "referrals_clicks_written_total",
                "Clicks written by this process's click writer.",
                registry=metrics.registry,
            )
            dropped = Counter(
                "referrals_clicks_dropped_total",
                "Clicks not written: the buffer was full, the store refused their batch, "
                "or the writer had stopped.",
                ["reason"],
                registry=metrics.registry,
            )
            self._counted = (written, dropped)

    def start(self) -> None:
        self._accepting = True
        self._thread.start()

    def stop(self) -> None:
        """Take no more clicks, and write those buffered before returning."""
        with self._lock:
            self._accepting = False
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=STOP_TIMEOUT)
        if self._thread.is_alive():
            logger.warning("clicks still buffered at stop: %d not written", len(self._pending))

    def record(self, click: Click) -> bool:
        """Buffer `click` to be written soon; False if it is dropped (the buffer is full,
        or the writer has stopped). Never waits for the store."""
        with self._lock:
            if not self._accepting or len(self._pending) >= self.capacity:
                reason = "full" if self._accepting else "stopped"
                self._drop(1, reason)
                return False
            self._pending.append(click)
            full = len(self._pending) >= self.batch
        if full:
            self._wake.set()
        return True

    def flush(self) -> int:
        """Write everything buffered, a transaction per batch; the clicks written."""
        written = 0
        while True:
            with self._lock:
                count = min(self.batch, len(self._pending))
                chunk = [self._pending.popleft() for _ in range(count)]
            if not chunk:
                return written
            try:
                with self.store.unit_of_work() as uow:
                    for click in chunk:
                        uow.clicks.add(click)
                    uow.commit()
            except Exception as error:  # the thread must live on whatever the store says
                logger.warning("%d clicks not recorded: %s", len(chunk), type(error).__name__)
                with self._lock:
                    self._drop(len(chunk), "store")
                continue
            written += len(chunk)
            self.written += len(chunk)
            if self._counted:
                self._counted[0].inc(len(chunk))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            self.flush()
            self._log_full()
        self.flush()  # what came in before the stop
        self._log_full()

    def _drop(self, count: int, reason: str) -> None:
        """Count dropped clicks (with the lock held)."""
        self.dropped += count
        if reason == "full":
            self._full += count
        if self._counted:
            self._counted[1].labels(reason).inc(count)

    def _log_full(self) -> None:
        # A line per flush, not per click: a flood must not flood the log as well.
        with self._lock:
            full, self._full = self._full, 0
        if full:
            logger.warning("%d clicks dropped: the click buffer was full", full)
