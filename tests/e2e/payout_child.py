# ruff: noqa: E402  (the imports below wait for gc.disable() and sys.path)
"""One payout attempt in its own OS process, for the crash and race tests of test_payout_crash.

It runs `run_payout` for a period and then delivers the outbox, calling a
checkpoint at every named step. With `--kill-at NAME --nth N` the process
sends itself SIGKILL at the N-th occurrence of NAME: no cleanup, no rollback
handler, no flush, exactly like a crash. `--stop-at` sends SIGSTOP instead, so
the test can freeze an attempt there and let it go on later (a stale owner).

Every delivery is appended to `--deliveries` (one event id a line, fsynced)
before the dispatcher marks it delivered, so the test can check that no event
was lost. Exit codes: 0 the run is completed (stdout: the run as JSON),
3 PayoutInProgress, anything else a failure.

`--serve` makes this a fork server: it imports everything once, then reads one
JSON request a line on stdin ({"id", "args", "stdout", "stderr"}), forks an
attempt per request (a fresh process that builds its own services, as above)
and answers JSON lines on stdout: {"id", "pid"} when it started, {"id",
"stopped": true} when it stopped itself, {"id", "returncode"} when it ended
(-9 when killed). The tests start dozens of attempts; without it, each would
pay a second of imports. Closing stdin ends the server and its attempts.
"""

import argparse
import gc
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

# The cyclic GC only slows the imports down (by about 15 %): an attempt enables it
# again in main(), the fork server freezes what it imported and forks without it.
gc.disable()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.clocks

from referrals.bootstrap import build
from referrals.config import Settings
from referrals.domain.errors import PayoutInProgress
from referrals.domain.model import Event
from referrals.domain.periods import Period
from referrals.services.outbox import dispatch
from referrals.services.payouts import run_payout
from tests.clocks import FixedClock

IN_PROGRESS = 3
GO_TIMEOUT_S = 60.0
# What build() and the migrations import lazily: the fork server imports them up front.
WARM_UP = (
    "alembic.command",
    "referrals.adapters.notify.log",
    "referrals.adapters.reports.local",
    "referrals.adapters.sql.engine",
    "referrals.adapters.sql.migrate",
    "referrals.adapters.sql.store",
)


class FileNotifier:
    """Appends each delivered event id to a file, durably, before the outbox hears of it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, event: Event) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(event.id + "\n")
            log.flush()
            os.fsync(log.fileno())


class Checkpoints:
    def __init__(self, name: str | None, nth: int, sig: signal.Signals) -> None:
        self.name, self.nth, self.sig = name, nth, sig
        self.seen: Counter[str] = Counter()

    def __call__(self, step: str) -> None:
        self.seen[step] += 1
        if step == self.name and self.seen[step] == self.nth:
            os.kill(os.getpid(), self.sig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", type=Path)
    parser.add_argument("--reports", type=Path)
    parser.add_argument("--deliveries", type=Path)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--owner", default=None)
    parser.add_argument("--batch-size", type=int, default=7)
    parser.add_argument("--now", default=None, help="ISO timestamp for a fixed clock")
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--stop-at", default=None)
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--ready", type=Path, default=None, help="touched once built")
    parser.add_argument("--go", type=Path, default=None, help="wait for this file to start")
    parser.add_argument("--serve", action="store_true", help="run as a fork server")
    args = parser.parse_args(argv)
    if not args.serve and None in (args.database, args.reports, args.deliveries):
        parser.error("--database, --reports and --deliveries are required")
    if args.kill_at and args.stop_at:
        parser.error("--kill-at and --stop-at exclude each other")
    return args


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + GO_TIMEOUT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.001)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve:
        return serve()
    gc.enable()
    settings = Settings(
        database_url=f"sqlite:///{args.database}", reports_url=str(args.reports), scheduler=False
    )
    services = build(settings, migrate=True)
    if args.now is not None:
        services = replace(services, clock=FixedClock(datetime.fromisoformat(args.now)))
    if args.kill_at:
        checkpoint = Checkpoints(args.kill_at, args.nth, signal.SIGKILL)
    else:
        checkpoint = Checkpoints(args.stop_at, args.nth, signal.SIGSTOP)
    if args.ready is not None:
        args.ready.touch()
    if args.go is not None:
        _wait_for(args.go)

    try:
        run = run_payout(
            services.store,
            services.reports,
            services.clock,
            Period.parse(args.period),
            owner=args.owner,
            batch_size=args.batch_size,
            checkpoint=checkpoint,
        )
    except PayoutInProgress as error:
        print(f"in progress: {error}", file=sys.stderr)
        return IN_PROGRESS

    notifier = FileNotifier(args.deliveries)
    while True:
        result = dispatch(
            services.store,
            notifier,
            services.clock,
            services.retry_policy,
            limit=500,
            checkpoint=checkpoint,
        )
        if result.delivered + result.failed == 0:
            break
    print(
        json.dumps(
            {
                "period": run.period,
                "status": run.status.value,
                "referrer_count": run.referrer_count,
                "referral_count": run.referral_count,
                "total_cents": run.total_cents,
                "report_sha256": run.report_sha256,
                "completed_at": run.completed_at.isoformat() if run.completed_at else None,
            }
        )
    )
    return 0


# --- fork server ---------------------------------------------------------------------------


def _tell(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _fork(request: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(request["stdout"], flags, 0o644), 1)
        os.dup2(os.open(request["stderr"], flags, 0o644), 2)
        code = main(list(request["args"]))
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> int:
    for module in WARM_UP:
        importlib.import_module(module)
    gc.freeze()  # what is imported stays shared with the forks, out of their collections
    sys.stdout.flush()
    sys.stderr.flush()
    running: dict[int, str] = {}  # pid -> request id
    pending = b""
    reading = True
    while reading or running:
        if reading and select.select([0], [], [], 0.002)[0]:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                reading = False
                for pid in running:  # the tests are over: leave nothing behind
                    os.kill(pid, signal.SIGKILL)
            *lines, pending = (pending + chunk).split(b"\n")
            for line in filter(None, lines):
                request = json.loads(line)
                pid = _fork(request)
                running[pid] = request["id"]
                _tell({"id": request["id"], "pid": pid})
        elif not reading:
            time.sleep(0.002)
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED)
            if pid == 0:
                break
            if os.WIFSTOPPED(status):
                _tell({"id": running[pid], "stopped": True})
            else:
                _tell({"id": running.pop(pid), "returncode": os.waitstatus_to_exitcode(status)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
