"""The payout run killed with SIGKILL at every step, then run again: each reward paid once.

Each attempt is a real OS process (payout_child.py) that kills itself at a named
checkpoint of `run_payout` or of the outbox dispatcher. After a re-run the
period must be completed with exactly the state, report and manifest of an
uninterrupted run, one `payout.completed` event, and every event delivered at
least once. Attempts racing for a period, or frozen past their lease and
resumed after a takeover, never pay a reward twice.

The attempts are forked by one `payout_child.py --serve` process that did the
imports once (a second per process otherwise); one test starts the script the
plain way.
"""

import csv
import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

import pytest

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Event
from referrals.domain.periods import Period
from referrals.services.outbox import CLAIM, dispatch
from referrals.services.payouts import LEASE, run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

pytestmark = pytest.mark.e2e

CHILD = Path(__file__).with_name("payout_child.py")
CHILD_TIMEOUT_S = 60.0
KILLED = -signal.SIGKILL
IN_PROGRESS = 3  # payout_child's exit code for PayoutInProgress

PERIOD = "2026-10"
CUTOFF = datetime(2026, 11, 1, tzinfo=UTC)
BATCH_SIZE = 7
# Referrer -> rewards earned in October. Ids starting with a formula trigger
# must be neutralised in the CSV. 60 rewards in batches of 7: 9 batches.
REFERRERS = {"alice": 20, "-minus": 14, "@at": 12, "bob.b": 9, "+plus": 5}
ELIGIBLE = sum(REFERRERS.values())
# Earned exactly at the cutoff: they belong to November, the 2026-10 run must not pay them.
LATE = ("alice", "-minus")
# The seed leaves this many referral.created events for the children to deliver.
UNDELIVERED_SEED_EVENTS = 5
SEEDED_DELIVERIES = ELIGIBLE + len(LATE) - UNDELIVERED_SEED_EVENTS


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


CUTOFF_MICROS = _micros(CUTOFF)


def tier_cents(ordinal: int) -> int:
    """The default schedule, written out here so the expected report does not come from src."""
    return 1000 if ordinal < 5 else 1500 if ordinal < 10 else 2000 if ordinal < 25 else 2500


def expected_report() -> bytes:
    rows = ["period,referrer_id,referral_count,amount_cents,amount,currency,program"]
    for referrer in sorted(REFERRERS):
        count = REFERRERS[referrer]
        cents = sum(tier_cents(n) for n in range(1, count + 1))
        cell = "'" + referrer if referrer[0] in "=+-@" else referrer
        rows.append(f"{PERIOD},{cell},{count},{cents},{cents // 100}.{cents % 100:02d},USD,default")
    return ("\n".join(rows) + "\n").encode()


# --- workspaces and child processes -------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "referrals.db"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def report(self) -> Path:
        return self.reports / "payouts" / PERIOD / "report.csv"

    @property
    def manifest(self) -> Path:
        return self.reports / "payouts" / PERIOD / "manifest.json"

    @property
    def staged(self) -> Path:
        return self.reports / "payouts" / "staged" / PERIOD

    @property
    def deliveries(self) -> Path:
        return self.root / "deliveries.log"

    def delivered_ids(self) -> list[str]:
        return self.deliveries.read_text().split() if self.deliveries.exists() else []


@dataclass(frozen=True)
class Reference:
    report: bytes
    manifest: bytes


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str

    def run(self) -> dict[str, Any]:
        assert self.returncode == 0, self.describe()
        return dict(json.loads(self.stdout.strip().splitlines()[-1]))

    def describe(self) -> str:
        return (
            f"exit {self.returncode}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


@dataclass
class Attempt:
    """One payout_child attempt, forked by the server: a process of its own."""

    server: "Children"
    id: str
    pid: int
    stdout: Path
    stderr: Path

    def wait_stopped(self) -> None:
        """Wait until the attempt froze itself at its checkpoint (SIGSTOP)."""
        event = self.server.wait_for(self.id, ("stopped", "returncode"))
        if "stopped" not in event:
            pytest.fail(f"the attempt ended instead of stopping:\n{self.finish().describe()}")

    def done(self) -> bool:
        return "returncode" in self.server.events(self.id)

    def finish(self) -> Finished:
        try:
            event = self.server.wait_for(self.id, ("returncode",))
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            self.server.wait_for(self.id, ("returncode",))
            pytest.fail(f"payout child {self.pid} hung:\n{self.stderr.read_text()}")
        return Finished(event["returncode"], self.stdout.read_text(), self.stderr.read_text())


class Children:
    """Starts payout_child attempts on a workspace, forked by one `payout_child.py --serve`.

    Each attempt is a real process that builds its own services and dies by SIGKILL;
    only the imports (a second per process) are done once, in the server.
    """

    def __init__(self, pycache: Path, logs: Path) -> None:
        # A developer's REFERRALS_* settings must not leak in; a private bytecode
        # cache keeps each start short (the venv ships none).
        env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        self.env = env
        self.logs = logs
        self._count = itertools.count()
        self._events: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._stderr = (logs / "server.stderr").open("wb")
        self._server = subprocess.Popen(
            [sys.executable, str(CHILD), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            cwd=logs,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._server.stdout is not None
        for line in self._server.stdout:
            message = json.loads(line)
            with self._changed:
                self._events.setdefault(message["id"], {}).update(message)
                self._changed.notify_all()
        with self._changed:
            self._events["<closed>"] = {}
            self._changed.notify_all()

    def events(self, attempt: str) -> dict[str, Any]:
        with self._changed:
            return dict(self._events.get(attempt, {}))

    def wait_for(self, attempt: str, keys: tuple[str, ...]) -> dict[str, Any]:
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        with self._changed:
            while not any(key in self._events.get(attempt, {}) for key in keys):
                if "<closed>" in self._events:
                    server_log = (self.logs / "server.stderr").read_text()
                    pytest.fail(f"the fork server ended:\n{server_log}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"attempt {attempt} never reported {keys}")
                self._changed.wait(left)
            return dict(self._events[attempt])

    def args(self, work: Workspace, *args: str) -> list[str]:
        return [
            "--database",
            str(work.database),
            "--reports",
            str(work.reports),
            "--deliveries",
            str(work.deliveries),
            "--period",
            PERIOD,
            "--batch-size",
            str(BATCH_SIZE),
            *args,
        ]

    def start(self, work: Workspace, *args: str) -> Attempt:
        n = next(self._count)
        name = f"attempt-{n}"
        out, err = work.root / f"{name}.stdout", work.root / f"{name}.stderr"
        request = {"id": name, "args": self.args(work, *args), "stdout": str(out)}
        request["stderr"] = str(err)
        assert self._server.stdin is not None
        self._server.stdin.write(json.dumps(request).encode() + b"\n")
        self._server.stdin.flush()
        return Attempt(self, name, self.wait_for(name, ("pid",))["pid"], out, err)

    def run(self, work: Workspace, *args: str) -> Finished:
        return self.start(work, *args).finish()

    def run_cold(self, work: Workspace, *args: str) -> Finished:
        """An attempt started the plain way, `python payout_child.py ...`, imports and all."""
        done = subprocess.run(
            [sys.executable, str(CHILD), *self.args(work, *args)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=work.root,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        return Finished(done.returncode, done.stdout, done.stderr)

    def close(self) -> None:
        assert self._server.stdin is not None
        self._server.stdin.close()  # the server kills what is left and exits
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._reader.join(timeout=10)
        self._stderr.close()


def later(delta: timedelta) -> str:
    """A fixed clock for a child, `delta` after now."""
    return (datetime.now(UTC) + delta).isoformat()


# --- reading the outcome -------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    referrals: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def run(self) -> dict[str, Any]:
        assert len(self.runs) == 1, self.runs
        return self.runs[0]

    @property
    def eligible(self) -> list[dict[str, Any]]:
        return [r for r in self.referrals if r["created_at"] < CUTOFF_MICROS]

    @property
    def late(self) -> list[dict[str, Any]]:
        return [r for r in self.referrals if r["created_at"] >= CUTOFF_MICROS]

    def statuses(self) -> Counter[tuple[str, str | None]]:
        return Counter((r["status"], r["payout_period"]) for r in self.referrals)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


def read_state(database: Path) -> State:
    with closing(sqlite3.connect(database)) as conn:
        conn.row_factory = sqlite3.Row

        def rows(query: str) -> list[dict[str, Any]]:
            return [dict(row) for row in conn.execute(query)]

        return State(
            referrals=rows(
                "SELECT id, referrer_id, status, payout_period, created_at, reward_cents"
                " FROM referrals ORDER BY id"
            ),
            runs=rows("SELECT * FROM payout_runs ORDER BY period"),
            events=rows("SELECT * FROM outbox ORDER BY id"),
        )


def assert_paid_once(work: Workspace, reference: Reference) -> State:
    """The period is completed exactly as an uninterrupted run completes it."""
    state = read_state(work.database)
    run = state.run
    assert run["period"] == PERIOD
    assert run["status"] == "completed", run
    assert run["lease_owner"] is None and run["lease_expires_at"] is None, run

    # Every reward earned before the cutoff is paid by this period, once; the later ones wait.
    assert len(state.referrals) == ELIGIBLE + len(LATE)
    assert len({r["id"] for r in state.referrals}) == len(state.referrals)
    assert len(state.eligible) == ELIGIBLE and len(state.late) == len(LATE)
    assert all(r["status"] == "paid" and r["payout_period"] == PERIOD for r in state.eligible)
    assert all(r["status"] == "pending" and r["payout_period"] is None for r in state.late)

    # The money adds up the same way in the rows, the run, the report and the event.
    report = work.report.read_bytes()
    assert report == reference.report
    lines = list(csv.DictReader(io.StringIO(report.decode())))
    paid_cents = sum(r["reward_cents"] for r in state.eligible)
    assert paid_cents == run["total_cents"] == sum(int(line["amount_cents"]) for line in lines)
    assert ELIGIBLE == run["referral_count"] == sum(int(line["referral_count"]) for line in lines)
    assert len(lines) == run["referrer_count"] == len(REFERRERS)

    digest = hashlib.sha256(report).hexdigest()
    manifest_bytes = work.manifest.read_bytes()
    assert manifest_bytes == reference.manifest
    manifest = json.loads(manifest_bytes)
    assert manifest["sha256"] == digest == run["report_sha256"]
    assert manifest["total_cents"] == paid_cents

    completed = state.events_of("payout.completed")
    assert len(completed) == 1, completed
    payload = json.loads(completed[0]["payload"])
    assert payload["report_sha256"] == digest and payload["total_cents"] == paid_cents
    assert state.events_of("payout.failed") == []

    # Every event delivered at least once, and the outbox knows it.
    assert all(e["status"] == "delivered" for e in state.events), [
        (e["id"], e["type"], e["status"]) for e in state.events if e["status"] != "delivered"
    ]
    delivered = work.delivered_ids()
    assert set(delivered) == {e["id"] for e in state.events}

    # A crash never happens inside a write of the report store: no temporary file is left.
    names = sorted(p.name for p in work.report.parent.iterdir())
    assert names == ["manifest.json", "report.csv"]
    # The staged copy is removed once the report is published: the report is stored once.
    assert not work.staged.exists(), list(work.staged.iterdir())
    # And the run says its report is published.
    assert run["error"] is None, run
    return state


# --- fixtures ------------------------------------------------------------------------------


def _services(work: Workspace) -> Services:
    settings = Settings(
        database_url=f"sqlite:///{work.database}", reports_url=str(work.reports), scheduler=False
    )
    return build(settings, migrate=True)


def _dispose(services: Services) -> None:
    """Close the pooled connections: the file is then whole, without a WAL beside it."""
    assert isinstance(services.store, SqlStore)
    services.store.dispose()


def _snapshot(source: Path, target: Path) -> None:
    """A single-file copy of a (WAL) database, safe to copy again per test."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


class ListNotifier:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def deliver(self, event: Event) -> None:
        self.ids.append(event.id)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A migrated database with the October rewards and the two earned at the cutoff.

    Most referral.created events are delivered already (as the log says), so each
    child has a few old events to deliver besides payout.completed, not sixty.
    """
    if datetime.now(UTC) < CUTOFF + LEASE + CLAIM:
        pytest.skip(f"the system clock is before the end of {PERIOD}: nothing to pay yet")
    seed = Workspace(tmp_path_factory.mktemp("payout-seed"))
    services = _services(seed)
    store, clock, program = services.store, services.clock, services.rules.current(services.clock)
    codes = {user: enroll(store, clock, user).referrer.code for user in REFERRERS}
    order = [user for user, count in REFERRERS.items() for _ in range(count)]
    Random(2026).shuffle(order)
    times = [datetime(2026, 10, 1, tzinfo=UTC) + timedelta(hours=11 * n) for n in range(ELIGIBLE)]
    times[-1] = CUTOFF - timedelta(microseconds=1)  # the last instant of October still counts
    for n, (user, moment) in enumerate(zip(order, times, strict=True)):
        sign_up(store, clock, program, f"ref{n:03d}", codes[user], signed_up_at=moment)
    for n, user in enumerate(LATE):
        sign_up(store, clock, program, f"late{n}", codes[user], signed_up_at=CUTOFF)
    notifier = ListNotifier()
    done = dispatch(store, notifier, clock, limit=SEEDED_DELIVERIES)
    assert done.delivered == SEEDED_DELIVERIES
    _dispose(services)

    template = Workspace(tmp_path_factory.mktemp("payout-template"))
    _snapshot(seed.database, template.database)
    template.deliveries.write_text("".join(f"{event_id}\n" for event_id in notifier.ids))
    return template


def clone(template: Workspace, root: Path) -> Workspace:
    work = Workspace(root)
    work.reports.mkdir(parents=True)
    shutil.copyfile(template.database, work.database)
    shutil.copyfile(template.deliveries, work.deliveries)
    return work


@pytest.fixture
def work(tmp_path: Path, template: Workspace) -> Workspace:
    return clone(template, tmp_path / "work")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, template: Workspace) -> Reference:
    """The report of the same seed paid by one uninterrupted run."""
    work = clone(template, tmp_path_factory.mktemp("payout-reference"))
    services = _services(work)
    run = run_payout(
        services.store,
        services.reports,
        services.clock,
        Period.parse(PERIOD),
        batch_size=BATCH_SIZE,
    )
    _dispose(services)
    report = work.report.read_bytes()
    assert report == expected_report()
    assert run.report_sha256 == hashlib.sha256(report).hexdigest()
    return Reference(report, work.manifest.read_bytes())


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Children]:
    # Its own bytecode cache, filled with just what the children import.
    server = Children(
        tmp_path_factory.mktemp("payout-pycache"), tmp_path_factory.mktemp("payout-server")
    )
    try:
        yield server
    finally:
        server.close()


# --- crash at every step -------------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    step: str
    nth: int
    assigned: int  # rewards assigned to the run (processing) when the process died
    completed: bool  # whether the completion transaction had committed

    def __str__(self) -> str:
        return f"{self.step}#{self.nth}"


KILL_POINTS = [
    KillPoint("claimed", 1, 0, False),
    KillPoint("assign_uncommitted", 1, 0, False),
    KillPoint("assign_batch", 1, BATCH_SIZE, False),
    KillPoint("assign_uncommitted", 4, 3 * BATCH_SIZE, False),
    KillPoint("assign_batch", 3, 3 * BATCH_SIZE, False),
    KillPoint("assign_batch", 9, ELIGIBLE, False),  # the last, partial batch
    KillPoint("assigned", 1, ELIGIBLE, False),
    KillPoint("report_rendered", 1, ELIGIBLE, False),
    KillPoint("report_written", 1, ELIGIBLE, False),
    KillPoint("complete_uncommitted", 1, ELIGIBLE, False),
    KillPoint("completed", 1, 0, True),
    KillPoint("report_published", 1, 0, True),
    KillPoint("manifest_written", 1, 0, True),
    KillPoint("delivered", 1, 0, True),
    KillPoint("delivered", 4, 0, True),  # some events delivered, none marked yet, some claimed
]


def assert_died_at(point: KillPoint, work: Workspace, reference: Reference, owner: str) -> None:
    """What a crash at `point` leaves: committed steps stay, the open transaction is gone."""
    state = read_state(work.database)
    run = state.run
    statuses = state.statuses()
    if point.completed:
        assert run["status"] == "completed"
        assert statuses == Counter({("paid", PERIOD): ELIGIBLE, ("pending", None): len(LATE)})
        assert len(state.events_of("payout.completed")) == 1
        # Until it is published, the run says so: a crash leaves it said.
        if point.step != "delivered":
            assert run["error"] == "the report is not published yet", run
        # The report is published after completion, from the attempt's rendered copy.
        if point.step == "completed":
            assert not work.report.exists() and not work.manifest.exists()
        else:
            assert work.report.read_bytes() == reference.report
            assert work.manifest.exists() == (point.step != "report_published")
    else:
        assert (run["status"], run["lease_owner"]) == ("running", owner)
        expected: Counter[tuple[str, str | None]] = Counter()
        expected[("processing", PERIOD)] = point.assigned
        expected[("pending", None)] = ELIGIBLE + len(LATE) - point.assigned
        assert +statuses == +expected
        assert state.events_of("payout.completed") == []
        assert not work.manifest.exists()
        # Before completion the report exists only staged, whole, under its own hash.
        assert not work.report.exists()
        staged = sorted(work.staged.glob("*.csv"))
        if point.step in ("report_written", "complete_uncommitted"):
            assert [p.read_bytes() for p in staged] == [reference.report]
            assert staged[0].stem == hashlib.sha256(reference.report).hexdigest()
        else:
            assert staged == []
    # The deliveries of the batch reached the receiver; they are marked together
    # after the batch, so the crash left all of them unmarked.
    delivered_now = point.nth if point.step == "delivered" else 0
    assert len(work.delivered_ids()) == SEEDED_DELIVERIES + delivered_now
    marked = sum(event["status"] == "delivered" for event in state.events)
    assert marked == SEEDED_DELIVERIES


@pytest.mark.parametrize("point", KILL_POINTS, ids=str)
def test_crash_then_rerun_pays_each_reward_once(
    point: KillPoint, work: Workspace, reference: Reference, children: Children
) -> None:
    owner = f"crash-test-{point}"
    died = children.run(work, "--owner", owner, "--kill-at", point.step, "--nth", str(point.nth))
    assert died.returncode == KILLED, died.describe()
    assert_died_at(point, work, reference, owner)

    # The lease of the dead attempt is still live: the same owner resumes it. Events the
    # dead dispatcher claimed stay hidden for CLAIM, so the re-run after a crash in
    # delivery looks at the outbox later, as the next dispatcher would.
    args = ["--owner", owner]
    if point.step == "delivered":
        args += ["--now", later(CLAIM + timedelta(seconds=1))]
    rerun = children.run(work, *args)
    assert rerun.returncode == 0, rerun.describe()
    assert rerun.run()["report_sha256"] == hashlib.sha256(reference.report).hexdigest()
    assert_paid_once(work, reference)
    # At least once: the events whose delivery was not marked went out again, same ids.
    again = [i for i, n in Counter(work.delivered_ids()).items() if n > 1]
    assert len(again) == (point.nth if point.step == "delivered" else 0), again


def test_crash_then_new_owner_takes_over_once_the_lease_expired(
    work: Workspace, reference: Reference, children: Children
) -> None:
    died = children.run(work, "--owner", "first", "--kill-at", "assign_batch", "--nth", "2")
    assert died.returncode == KILLED, died.describe()
    before = read_state(work.database)

    # While the dead attempt's lease lasts, another owner is turned away and changes nothing.
    refused = children.run(work, "--owner", "second")
    assert refused.returncode == IN_PROGRESS, refused.describe()
    assert "in progress" in refused.stderr
    assert read_state(work.database) == before
    assert before.run["lease_owner"] == "first"

    taken = children.run(work, "--owner", "second", "--now", later(LEASE + timedelta(seconds=1)))
    assert taken.returncode == 0, taken.describe()
    assert_paid_once(work, reference)


@pytest.mark.parametrize(("step", "nth"), [("assign_batch", 2), ("report_rendered", 1)])
def test_stale_owner_resuming_after_a_takeover_is_fenced(
    step: str, nth: int, work: Workspace, reference: Reference, children: Children
) -> None:
    """An attempt frozen past its lease (GC pause, stopped VM) must not act after a takeover."""
    stale = children.start(work, "--owner", "stale", "--stop-at", step, "--nth", str(nth))
    stale.wait_stopped()
    try:
        taken = children.run(work, "--owner", "fresh", "--now", later(LEASE + timedelta(seconds=1)))
    finally:
        os.kill(stale.pid, signal.SIGCONT)
    resumed = stale.finish()
    assert taken.returncode == 0, taken.describe()
    assert resumed.returncode == IN_PROGRESS, resumed.describe()
    assert_paid_once(work, reference)


def test_stale_owner_never_overwrites_the_completed_report(
    work: Workspace, children: Children
) -> None:
    """A reward of the period recorded late (a backdated signup) while an attempt is frozen.

    The frozen attempt rendered its report without it; the attempt that took over
    pays it and reports it. The frozen one, resumed, may only stage its report
    under its own hash: the published report stays the completed run's.
    """
    stale = children.start(work, "--owner", "stale", "--stop-at", "report_rendered")
    stale.wait_stopped()
    try:
        services = _services(work)
        with closing(sqlite3.connect(work.database)) as conn:
            query = "SELECT code FROM referrers WHERE user_id = 'alice'"
            (code,) = conn.execute(query).fetchone()
        late = datetime(2026, 10, 20, tzinfo=UTC)
        sign_up(
            services.store,
            services.clock,
            services.rules.current(services.clock),
            "backdated",
            code,
            signed_up_at=late,
        )
        _dispose(services)
        taken = children.run(work, "--owner", "fresh", "--now", later(LEASE + timedelta(seconds=1)))
    finally:
        os.kill(stale.pid, signal.SIGCONT)
    resumed = stale.finish()
    assert taken.returncode == 0, taken.describe()
    assert resumed.returncode == IN_PROGRESS, resumed.describe()

    state = read_state(work.database)
    assert state.run["referral_count"] == ELIGIBLE + 1  # the backdated reward is paid
    stored = work.report.read_bytes()
    assert hashlib.sha256(stored).hexdigest() == state.run["report_sha256"], stored
    assert json.loads(work.manifest.read_bytes())["sha256"] == state.run["report_sha256"]


def test_rerunning_a_completed_period_is_a_no_op(
    work: Workspace, reference: Reference, children: Children
) -> None:
    first = children.run_cold(work)  # also the plain `python payout_child.py` path
    state = assert_paid_once(work, reference)
    report_stat = work.report.stat()
    deliveries = work.deliveries.read_bytes()

    again = children.run(work, "--owner", "someone-else")
    assert again.run() == first.run()
    assert read_state(work.database) == state
    assert work.report.stat().st_mtime_ns == report_stat.st_mtime_ns
    assert work.report.stat().st_ino == report_stat.st_ino
    assert work.deliveries.read_bytes() == deliveries  # nothing new to announce
    assert_paid_once(work, reference)


# --- racing attempts -----------------------------------------------------------------------

RACES = 10


@pytest.mark.parametrize("scenario", ["fresh", "takeover"])
def test_two_attempts_racing_for_a_period_pay_each_reward_once(
    scenario: str,
    tmp_path: Path,
    template: Workspace,
    reference: Reference,
    children: Children,
) -> None:
    """Two owners start the same period at the same instant, on a new period or after a crash.

    After a crash both race to take the expired lease over. One completes the run;
    the other is turned away (PayoutInProgress) or, coming after, gets the completed run.
    """
    outcomes: Counter[tuple[int, ...]] = Counter()
    digest = hashlib.sha256(reference.report).hexdigest()
    for race in range(RACES):
        work = clone(template, tmp_path / f"race-{race}")
        clock: list[str] = []
        if scenario == "takeover":
            died = children.run(
                work, "--owner", "crashed", "--kill-at", "assign_batch", "--nth", "3"
            )
            assert died.returncode == KILLED, died.describe()
            clock = ["--now", later(LEASE + timedelta(seconds=1))]
        go = work.root / "go"
        racers = []
        for n in range(2):
            ready = work.root / f"ready-{n}"
            args = ["--owner", f"racer-{n}", "--ready", str(ready), "--go", str(go), *clock]
            racers.append((children.start(work, *args), ready))
        # Both processes are built and migrated: release them together.
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while not all(ready.exists() for _, ready in racers):
            if any(a.done() for a, _ in racers) or time.monotonic() > deadline:
                for attempt, _ in racers:
                    os.kill(attempt.pid, signal.SIGKILL)
                ended = [attempt.finish().describe() for attempt, _ in racers]
                pytest.fail("a racer never got ready:\n" + "\n".join(ended))
            time.sleep(0.002)
        go.touch()
        finished = [attempt.finish() for attempt, _ in racers]

        codes = tuple(sorted(f.returncode for f in finished))
        assert codes in {(0, 0), (0, IN_PROGRESS)}, [f.describe() for f in finished]
        outcomes[codes] += 1
        runs = [f.run() for f in finished if f.returncode == 0]
        assert all(run["report_sha256"] == digest for run in runs)
        assert all(run == runs[0] for run in runs)
        assert_paid_once(work, reference)
    print(f"{scenario} races, sorted exit codes: {dict(outcomes)}")


def test_repeated_crashes_then_rerun_pay_each_reward_once(
    work: Workspace, reference: Reference, children: Children
) -> None:
    """Crash after crash, each resuming where the last stopped: the outcome is the same."""
    owner = "unlucky"
    for step, nth in [
        ("assign_batch", 2),
        ("assign_uncommitted", 3),
        ("report_written", 1),
        ("complete_uncommitted", 1),
        ("delivered", 2),
    ]:
        died = children.run(work, "--owner", owner, "--kill-at", step, "--nth", str(nth))
        assert died.returncode == KILLED, (step, died.describe())
    rerun = children.run(work, "--owner", owner, "--now", later(CLAIM + timedelta(seconds=1)))
    assert rerun.returncode == 0, rerun.describe()
    assert_paid_once(work, reference)
