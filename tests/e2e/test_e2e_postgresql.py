"""Several `referrals serve` processes on one PostgreSQL database, as the scale-out shape runs.

Every test gets a database of its own on the local server (127.0.0.1:5432), created
empty and dropped at the end, and serves it from real server processes started
together: exact ordinals and tier rewards under signups spread over four servers,
one payout when two servers' schedulers fire at the same moment, and no
acknowledged signup lost when one of two servers is killed mid-load.
"""

import hashlib
import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from referrals.bootstrap import build
from referrals.config import Settings
from referrals.domain.periods import Period, last_ended_period
from referrals.services.keys import create_first_admin_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e

PAYOUT_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 30.0


def tier_cents(ordinal: int) -> int:
    """The default schedule written out by hand, so a wrong DEFAULT_TIERS cannot hide itself."""
    return 1000 if ordinal < 5 else 1500 if ordinal < 10 else 2000 if ordinal < 25 else 2500


# --- the database and the servers ---------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    with locale_database("referrals_e2e") as url:
        yield url


def sql(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on the database itself, not through the service."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(statement), params)]
    finally:
        engine.dispose()


class PostgresServers:
    """Starts `referrals serve` processes on one PostgreSQL database, through the e2e
    `servers` factory (its port retries, health wait and teardown)."""

    def __init__(self, factory: ServerFactory, url: str, reports: Path) -> None:
        self._factory = factory
        self._url = url
        self.reports = reports

    def start(
        self, count: int, *, scheduler: bool = False, workers: int = 1, **settings: str
    ) -> list[ServerProcess]:
        """Start `count` servers at once (their start-ups overlap), each healthy on return."""
        env = {
            "REFERRALS_REPORTS_URL": str(self.reports),
            "REFERRALS_SCHEDULER": "on" if scheduler else "off",
            **settings,
        }
        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [
                pool.submit(self._factory.start, self._url, env, workers) for _ in range(count)
            ]
            return [future.result() for future in futures]


@pytest.fixture(scope="module")
def psycopg_bytecode(pycache: Path) -> None:
    """Compile the PostgreSQL driver into the servers' bytecode cache once.

    The e2e warm-up leaves it out (the other tests use SQLite); without this, every
    server started together would compile it at the same time, within its start-up wait.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    imports = "import psycopg, sqlalchemy.dialects.postgresql.psycopg"
    done = subprocess.run(
        [sys.executable, "-c", imports],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def pg_servers(
    pg_url: str, servers: ServerFactory, tmp_path: Path, psycopg_bytecode: None
) -> PostgresServers:
    # pg_url is set up first, so its teardown (DROP DATABASE) runs after the servers stop.
    return PostgresServers(servers, pg_url, tmp_path / "reports")


def the_printed_key(started: list[Any]) -> str:
    """Of servers started together on an empty database, exactly one prints an admin key."""
    printed: list[str] = [s.printed_key for s in started if s.printed_key is not None]
    outputs = "\n".join(server.output() for server in started)
    assert len(printed) == 1, f"{len(printed)} of {len(started)} servers printed a key\n{outputs}"
    return printed[0]


def in_use_since(url: str, reports: Path, moment: datetime) -> str:
    """The database as a first server started at `moment` left it, with its first admin
    key (returned): the schedule pays only months that ended after that."""
    svc = build(Settings(database_url=url, reports_url=str(reports)), migrate=True)
    try:
        key = create_first_admin_key(svc.store, FixedClock(moment))
    finally:
        svc.store.dispose()
    assert key is not None
    return key


def assert_no_tracebacks(started: list[Any]) -> None:
    for server in started:
        assert "Traceback" not in server.stderr_path.read_text(errors="replace"), server.output()


class Clients:
    """One httpx client per server, shared by every worker thread (httpx allows it).

    A client costs tens of milliseconds of CPU to make (its TLS context), so one per
    thread and server would be a large part of the load. Each request gets a connection
    of its own: a kept-alive connection left idle for the server's keep-alive timeout
    (5 s) on a busy machine can be closed by the server just as a request goes out on
    it, a reset that says nothing about the service.
    """

    def __init__(self, started: list[Any], key: str, threads: int) -> None:
        limits = httpx.Limits(max_connections=threads, max_keepalive_connections=0)
        self._clients = [
            httpx.Client(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {key}"},
                timeout=HTTP_TIMEOUT_S,
                limits=limits,
            )
            for server in started
        ]

    def get(self, server: int) -> httpx.Client:
        return self._clients[server]

    def close(self) -> None:
        for client in self._clients:
            client.close()


def pages_across(admins: list[httpx.Client], path: str, limit: int) -> list[dict[str, Any]]:
    """A paginated list where each page comes from the next server: cursors are portable."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit}
    for page_number in range(1000):
        response = admins[page_number % len(admins)].get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} never returned a last page")


def ordinal_stats(url: str) -> dict[str, tuple[int, int, int, int]]:
    rows = sql(
        url,
        "SELECT referrer_id, count(*), count(DISTINCT ordinal), min(ordinal), max(ordinal)"
        " FROM referrals GROUP BY referrer_id",
    )
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


# --- 1. four servers, 400 concurrent signups ----------------------------------------------

SERVERS = 4
THREADS = 32
SIGNUPS = 400
HOT_REFERRERS = ["hot-alice", "Hot-Bob", "hot.carol", "hot-dave"]
WORKER_SIGNUPS = 120


def test_four_servers_give_exact_ordinals_and_tier_rewards(
    pg_servers: PostgresServers, pg_url: str, all_referrals: Any
) -> None:
    started = pg_servers.start(SERVERS)
    key = the_printed_key(started)
    admins = [server.client(key) for server in started]
    codes = {}
    for user_id in HOT_REFERRERS:
        response = admins[0].post("/v1/referrers", json={"user_id": user_id})
        assert response.status_code == 201, response.text
        codes[user_id] = response.json()["code"]

    # Signup i goes to server i % 4 and referrer (i // 4) % 4, so every referrer's
    # counter is contended from all four servers at once.
    plan = {
        f"user-{i:03d}": (i % SERVERS, HOT_REFERRERS[(i // SERVERS) % len(HOT_REFERRERS)])
        for i in range(SIGNUPS)
    }
    clients = Clients(started, key, THREADS)

    def sign_up_over_http(user_id: str) -> tuple[str, int, str, dict[str, Any] | None]:
        server, referrer = plan[user_id]
        body = {"user_id": user_id, "referral_code": codes[referrer]}
        try:
            response = clients.get(server).post("/v1/signups", json=body)
        except httpx.TransportError as error:
            return user_id, 0, repr(error), None
        answer = response.json() if response.status_code == 201 else None
        return user_id, response.status_code, response.text, answer

    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = list(pool.map(sign_up_over_http, plan))
    finally:
        clients.close()

    failed = [(user, status, body) for user, status, body, _ in results if status != 201]
    assert failed == [], f"{len(failed)} signups failed, e.g. {failed[:3]}"
    answered = {user: answer for user, _, _, answer in results if answer is not None}

    total = 0
    for referrer in HOT_REFERRERS:
        mine = {user for user, (_, owner) in plan.items() if owner == referrer}
        # What each client was told: ordinals 1..n, priced by the tier of the ordinal.
        told = sorted(answered[user]["referral"]["ordinal"] for user in mine)
        assert told == list(range(1, len(mine) + 1)), Counter(told).most_common(3)

        stats = admins[1].get(f"/v1/referrers/{referrer}")
        assert stats.status_code == 200, stats.text
        n = stats.json()["referral_count"]
        path = f"/v1/referrers/{referrer}/referrals"
        items = all_referrals(admins[2], path)
        ordinals = [item["ordinal"] for item in items]
        assert ordinals == list(range(1, n + 1)), Counter(ordinals).most_common(3)
        assert n == len(mine)
        assert {item["referee_id"] for item in items} == mine
        for item in items:
            assert item["reward_cents"] == tier_cents(item["ordinal"]), item
            assert item == answered[item["referee_id"]]["referral"], "stored is what was told"
        assert stats.json()["earned_cents"] == sum(item["reward_cents"] for item in items)
        # A cursor made by one server continues on another.
        assert pages_across(admins, path, limit=17) == items
        total += n
    assert total == SIGNUPS

    # And on the database itself: per referrer, n rows with n distinct ordinals 1..n.
    per_referrer = len(plan) // len(HOT_REFERRERS)
    assert ordinal_stats(pg_url) == {
        referrer: (per_referrer, per_referrer, 1, per_referrer) for referrer in HOT_REFERRERS
    }
    counters = sql(
        pg_url,
        "SELECT user_id, referral_count FROM referrers WHERE referral_count > 0",
    )
    assert dict(counters) == dict.fromkeys(HOT_REFERRERS, per_referrer)
    assert all(server.process.poll() is None for server in started)
    assert_no_tracebacks(started)


def test_one_server_with_two_worker_processes_gives_exact_ordinals(
    pg_servers: PostgresServers, pg_url: str
) -> None:
    # In use since before the month just ended, so the schedule pays that month.
    key = in_use_since(pg_url, pg_servers.reports, last_ended_period(datetime.now(UTC)).start)
    (server,) = pg_servers.start(1, scheduler=True, workers=2)
    admin = server.client(key)
    code = admin.post("/v1/referrers", json={"user_id": "hot"}).json()["code"]
    clients = Clients([server], key, THREADS)

    def sign_up_over_http(n: int) -> int:
        body = {"user_id": f"w-{n:03d}", "referral_code": code}
        answer = clients.get(0).post("/v1/signups", json=body)
        assert answer.status_code == 201, answer.text
        ordinal: int = answer.json()["referral"]["ordinal"]
        return ordinal

    try:
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            ordinals = sorted(pool.map(sign_up_over_http, range(WORKER_SIGNUPS)))
    finally:
        clients.close()
    assert ordinals == list(range(1, WORKER_SIGNUPS + 1))
    assert ordinal_stats(pg_url) == {"hot": (WORKER_SIGNUPS, WORKER_SIGNUPS, 1, WORKER_SIGNUPS)}
    # uvicorn's supervisor started two processes, each serving (and scheduling) on its own.
    workers = set(re.findall(r"Started server process \[(\d+)\]", server.output()))
    assert len(workers) == 2, server.output()
    # Both processes' schedulers claimed the month just ended: it was run once.
    once = [(str(last_ended_period(datetime.now(UTC))), "completed")]
    deadline = time.monotonic() + PAYOUT_TIMEOUT_S
    while (runs := sql(pg_url, "SELECT period, status FROM payout_runs")) != once:
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    assert_no_tracebacks([server])


# --- 2. two servers' schedulers pay the month just ended once ----------------------------

# Referrer -> rewards imported into the month just ended. Ids starting with a formula
# trigger must be neutralised in the CSV; report lines sort by bytes, not by the locale.
LAST_MONTH = {"alice": 30, "Bob": 12, "-dash": 6, "zed": 1}
# Referrer -> rewards earned this month: the run must leave them pending.
THIS_MONTH = {"alice": 2, "zed": 1, "newcomer": 1}


def expected_rewards() -> dict[str, list[int]]:
    """What the run must pay per referrer: the ordinals of the seed in order, priced by tier."""
    counts = dict(LAST_MONTH)
    counts["Bob"] += 1  # the older import comes right after Bob's imports of last month
    return {r: [tier_cents(n) for n in range(1, count + 1)] for r, count in counts.items()}


def expected_report(period: str, paid: dict[str, list[int]]) -> bytes:
    rows = ["period,referrer_id,referral_count,amount_cents,amount,currency,program"]
    for referrer in sorted(paid, key=lambda r: r.encode()):
        count, cents = len(paid[referrer]), sum(paid[referrer])
        cell = "'" + referrer if referrer[0] in "=+-@" else referrer
        amount = f"{cents // 100}.{cents % 100:02d}"
        rows.append(f"{period},{cell},{count},{cents},{amount},USD,default")
    return ("\n".join(rows) + "\n").encode()


def seed_rewards(url: str, reports: Path, now: datetime) -> tuple[dict[str, str], dict[str, str]]:
    """Rewards in the month just ended (and one older), and some this month, via the services.

    Returns (referee -> referrer) for the rewards the run must pay and for those it must not.
    """
    period = last_ended_period(now)
    svc = build(Settings(database_url=url, reports_url=str(reports)), migrate=True)
    due: dict[str, str] = {}
    not_due: dict[str, str] = {}
    try:
        codes = {}
        for referrer in sorted(LAST_MONTH.keys() | THIS_MONTH.keys()):
            codes[referrer] = enroll(svc.store, svc.clock, referrer).referrer.code

        def add(referee: str, referrer: str, at: datetime | None) -> None:
            sign_up(
                svc.store,
                svc.clock,
                svc.rules.current(svc.clock),
                referee,
                codes[referrer],
                signed_up_at=at,
            )

        span = period.cutoff - period.start
        for referrer, count in LAST_MONTH.items():
            for n in range(count):
                # Spread over the month, from its first instant to its last microsecond.
                at = period.start + span * n / count
                if n == count - 1 and n > 0:
                    at = period.cutoff - timedelta(microseconds=1)
                referee = f"last-{referrer}-{n}"
                add(referee, referrer, at)
                due[referee] = referrer
        # Earned before the month just ended and never paid: that run pays it too.
        add("older-Bob", "Bob", period.previous().start + timedelta(days=3))
        due["older-Bob"] = "Bob"
        for referrer, count in THIS_MONTH.items():
            for n in range(count):
                # The first instant of this month (the cutoff) belongs to the next run.
                referee = f"this-{referrer}-{n}"
                add(referee, referrer, period.cutoff if n == 0 else None)
                not_due[referee] = referrer
    finally:
        svc.store.dispose()  # type: ignore[attr-defined]
    return due, not_due


def wait_for_completed_run(
    started: list[Any], admins: list[httpx.Client], period: str
) -> dict[str, Any]:
    deadline = time.monotonic() + PAYOUT_TIMEOUT_S
    for attempt in itertools.count():
        response = admins[attempt % len(admins)].get(f"/v1/payouts/{period}")
        if response.status_code == 200:
            run: dict[str, Any] = response.json()
            assert run["status"] != "failed", run
            if run["status"] == "completed":
                return run
        else:
            assert response.status_code == 404, response.text
        if time.monotonic() > deadline:
            outputs = "\n".join(server.output() for server in started)
            raise AssertionError(f"{period} not paid in {PAYOUT_TIMEOUT_S:.0f} s\n{outputs}")
        time.sleep(0.1)
    raise AssertionError("unreachable")


def test_two_servers_schedulers_pay_the_month_just_ended_once(
    pg_servers: PostgresServers, pg_url: str, all_referrals: Any
) -> None:
    now = datetime.now(UTC)
    if Period.containing(now).cutoff - now < timedelta(minutes=5):
        pytest.skip("the month ends within minutes: the servers would pay another period")
    period = str(last_ended_period(now))
    # A database in use since the month just ended began (its first server printed the
    # key then), so the schedule pays that month.
    key = in_use_since(pg_url, pg_servers.reports, last_ended_period(now).start)
    due, not_due = seed_rewards(pg_url, pg_servers.reports, now)

    # Each server checks the schedule as its background worker starts, so both go for
    # the month just ended at once; a batch of one makes a run long enough to overlap.
    started = pg_servers.start(2, scheduler=True, REFERRALS_PAYOUT_BATCH_SIZE="1")
    assert [s.printed_key for s in started] == [None, None]  # the database had its key
    admins = [server.client(key) for server in started]
    run = wait_for_completed_run(started, admins, period)

    rows = sql(pg_url, "SELECT referee_id, status, payout_period FROM referrals")
    assert len(rows) == len(due) + len(not_due)
    by_referee = {referee: (status, paid_in) for referee, status, paid_in in rows}
    assert len(by_referee) == len(rows)
    assert {r for r in due if by_referee[r] != ("paid", period)} == set()
    assert {r for r in not_due if by_referee[r] != ("pending", None)} == set()

    admin = admins[1]
    paid_items = all_referrals(admin, "/v1/referrals", status="paid")
    assert sorted(item["referee_id"] for item in paid_items) == sorted(due)
    assert {item["payout_period"] for item in paid_items} == {period}
    pending = all_referrals(admin, "/v1/referrals", status="pending")
    assert sorted(item["referee_id"] for item in pending) == sorted(not_due)
    alice = admin.get("/v1/referrers/alice").json()
    assert alice["paid_cents"] == sum(expected_rewards()["alice"])
    assert alice["payable_cents"] == tier_cents(31) + tier_cents(32)

    paid: dict[str, list[int]] = {}
    for item in sorted(paid_items, key=lambda item: item["ordinal"]):
        paid.setdefault(item["referrer_id"], []).append(item["reward_cents"])
    assert paid == expected_rewards()
    assert run["referral_count"] == len(due)
    assert run["referrer_count"] == len(paid) == len(LAST_MONTH)
    assert run["total_cents"] == sum(sum(cents) for cents in paid.values())
    assert run["report_key"] == f"payouts/{period}/report.csv"
    assert run["previous_month_sha256"] is None

    runs = sql(pg_url, "SELECT period, status, lease_owner FROM payout_runs")
    assert runs == [(period, "completed", None)]
    events = sql(pg_url, "SELECT type, payload FROM outbox WHERE type LIKE 'payout.%'")
    assert [event_type for event_type, _ in events] == ["payout.completed"], events
    listed = admin.get("/v1/events", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    completions = [e for e in listed.json()["items"] if e["type"] == "payout.completed"]
    assert len(completions) == 1, completions
    assert completions[0]["data"]["period"] == period
    assert completions[0]["data"]["report_sha256"] == run["report_sha256"]

    report = pg_servers.reports / "payouts" / period / "report.csv"
    assert report.is_file(), sorted(pg_servers.reports.rglob("*"))
    data = report.read_bytes()
    assert hashlib.sha256(data).hexdigest() == run["report_sha256"]
    assert data == expected_report(period, expected_rewards())
    assert (pg_servers.reports / "payouts" / period / "manifest.json").is_file()
    for client in admins:
        served = client.get(f"/v1/payouts/{period}/report")
        assert served.status_code == 200, served.text
        assert served.content == data

    # Asking again, on either server, returns the stored run and pays nothing more.
    for client in admins:
        again = client.post("/v1/payouts", json={"period": period})
        assert again.status_code == 200, again.text
        assert again.json() == run
    events = sql(pg_url, "SELECT count(*) FROM outbox WHERE type = 'payout.completed'")
    assert events == [(1,)]
    logs = "".join(server.stderr_path.read_text(errors="replace") for server in started)
    assert f"scheduled payout {period} completed" in logs
    assert_no_tracebacks(started)


# --- 3. one of two servers killed mid-load ------------------------------------------------

LOAD_THREADS = 8
ACKS_BEFORE_KILL = 60
ACKS_AFTER_KILL = 30
KILL_REFERRERS = ["kill-a", "kill-b", "kill-c"]


class SpreadLoad:
    """Threads signing up fresh users over both servers, remembering what was acknowledged."""

    def __init__(self, started: list[Any], key: str, codes: dict[str, str]) -> None:
        self.clients = Clients(started, key, LOAD_THREADS)
        self._servers = len(started)
        self._codes = codes
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.dead: set[int] = set()
        self.acked: dict[str, dict[str, Any]] = {}  # user id -> the referral in the 2xx answer
        self.bodies: dict[str, dict[str, str]] = {}
        self.in_doubt: set[str] = set()  # the server died with the request in flight
        self.unexpected: list[tuple[str, int, str]] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(LOAD_THREADS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a load thread hung after a server died"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, worker: int) -> None:
        referrers = sorted(self._codes)
        for i in itertools.count():
            if self.stop.is_set():
                return
            with self._lock:
                live = [s for s in range(self._servers) if s not in self.dead]
            if not live:
                return  # every server failed: the test reports it from `dead`
            server = live[(worker + i) % len(live)]
            user_id = f"load-{worker}-{i}"
            body = {"user_id": user_id, "referral_code": self._codes[referrers[i % len(referrers)]]}
            try:
                response = self.clients.get(server).post("/v1/signups", json=body)
            except httpx.TransportError:
                # Committed or not, nobody knows: the client retries it below, elsewhere.
                with self._lock:
                    self.dead.add(server)
                    self.in_doubt.add(user_id)
                    self.bodies[user_id] = body
                continue
            with self._lock:
                if response.status_code == 201:
                    self.acked[user_id] = response.json()["referral"]
                else:
                    self.unexpected.append((user_id, response.status_code, response.text))


def test_sigkill_of_one_server_loses_no_acknowledged_signup(
    pg_servers: PostgresServers, pg_url: str, all_referrals: Any
) -> None:
    started = pg_servers.start(2)
    key = the_printed_key(started)
    survivor, victim = started
    # The PID we signal must be the process uvicorn serves from, not a wrapper around it.
    assert victim.uvicorn_pid() == victim.pid, victim.output()
    admin = survivor.client(key)
    codes = {}
    for referrer in KILL_REFERRERS:
        response = admin.post("/v1/referrers", json={"user_id": referrer})
        assert response.status_code == 201, response.text
        codes[referrer] = response.json()["code"]

    load = SpreadLoad(started, key, codes)
    load.start()
    try:
        deadline = time.monotonic() + 30
        while load.acked_count() < ACKS_BEFORE_KILL:
            assert time.monotonic() < deadline, f"load too slow: {load.acked_count()} in 30 s"
            time.sleep(0.01)
        victim.kill()
        # The survivor keeps signing up, on referrer rows the victim may have held locked.
        target = load.acked_count() + ACKS_AFTER_KILL
        deadline = time.monotonic() + 30
        while load.acked_count() < target or not load.in_doubt:
            assert time.monotonic() < deadline, (load.acked_count(), load.in_doubt)
            time.sleep(0.01)
    finally:
        load.join()
        load.clients.close()
    assert load.unexpected == [], load.unexpected[:3]
    assert load.dead == {1}

    # The client retries what it does not know about: a replay (200) if it was
    # committed, a fresh signup (201) if not; never a second referral.
    for user_id in sorted(load.in_doubt):
        retried = admin.post("/v1/signups", json=load.bodies[user_id])
        assert retried.status_code in (200, 201), retried.text
        load.acked[user_id] = retried.json()["referral"]

    stored: dict[str, dict[str, Any]] = {}
    for referrer in KILL_REFERRERS:
        items = all_referrals(admin, f"/v1/referrers/{referrer}/referrals")
        count = admin.get(f"/v1/referrers/{referrer}").json()["referral_count"]
        assert [item["ordinal"] for item in items] == list(range(1, count + 1)), referrer
        for item in items:
            assert item["reward_cents"] == tier_cents(item["ordinal"]), item
            stored[item["referee_id"]] = item
    assert sorted(stored) == sorted(load.acked), "every acknowledged signup, and nothing else"
    for user_id, answered in load.acked.items():
        # What the client was told (id, ordinal, price) is what the database kept.
        assert stored[user_id] == answered, user_id
    assert sum(n for n, _, _, _ in ordinal_stats(pg_url).values()) == len(load.acked)
    for n, distinct, low, high in ordinal_stats(pg_url).values():
        assert (distinct, low, high) == (n, 1, n)
    assert_no_tracebacks([survivor])
