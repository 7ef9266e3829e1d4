"""Signups over HTTP against a real `referrals serve`, load from wrk on 127.0.0.1.

Floor: the same server's `/healthz` (one database round trip) in the same run,
at its peak and at half its peak rate: the latency any request meets on this
machine at that load. Each peak also reports the server's CPU time per request
(its processes' user and system time over the run): steadier than requests per
second on a machine shared with the database and the load generator.

For each scenario, a hot referrer and signups spread over 10,000 referrers: peak
throughput with N connections, then latency at about half that rate (each
connection pauses a random time between requests, so the rate is held, not pushed).

Every run reports p99 and the slowest request (max), and the machine's load average.
With `--rounds N` the whole sequence is repeated on the same server (a tail that
shows in one round in ten is not missed); the top-level figures are then the median
over rounds, each round's in `rounds`. On PostgreSQL each run also reads
`pg_stat_database.sessions` of the database before and after it, the server
fallen idle (new sessions under a steady load: connections opened and closed), and
the server's log is searched for failed deliveries and deadlocks.

    python -m bench.signup_http [--database sqlite|postgresql] [--duration 10]
                                [--connections 32] [--threads 2] [--workers 1]
                                [--rounds 1]
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import httpx

from bench.payout import PG_SERVER, admin_sql

SPREAD = 10_000

LUA = """
local counter = 0
local prefix = ""
local referrers = %(referrers)d
local pause = %(pause_ms)d
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function init(args)
  prefix = "u%(run)s-" .. tid .. "-"
  math.randomseed(tonumber(tid))
end
%(delay)s
function request()
  counter = counter + 1
  local code = string.format("C%%05d", math.random(0, referrers - 1))
  local body = '{"user_id":"' .. prefix .. counter .. '","referral_code":"' .. code .. '"}'
  return wrk.format("POST", "%(path)s", {
    ["Content-Type"] = "application/json",%(auth)s
  }, body)
end
%(done)s
"""

FLOOR_LUA = """
local pause = %(pause_ms)d
%(delay)s
%(done)s
"""

# Pauses drawn from an exponential distribution with the mean asked for: the
# connections then send like independent users (Poisson arrivals). A fixed pause
# kept them in lock-step, so the "half rate" arrived as bursts of every
# connection at once, at the peak rate, and measured the burst's queue.
DELAY = """
function delay()
  if pause == 0 then return 0 end
  return math.floor(-pause * math.log(1 - math.random()))
end
"""

DONE = """
function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    "RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,"
    .. "\\"max_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    non2xx))
end
"""


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time so far of the server process and its children (its workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(url: str, tmp: Path, tree: Path | None = None) -> dict[str, str]:
    """The environment `referrals` runs in; with `tree`, the code of that checkout
    (its `src` comes first on the path, before the venv's editable install)."""
    env = {**os.environ, "REFERRALS_DATABASE_URL": url, "REFERRALS_SCHEDULER": "off"}
    env["REFERRALS_REPORTS_URL"] = str(tmp / "reports")
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve() / "src")
    return env


def seed_referrers(url: str, tmp: Path, tree: Path | None = None) -> None:
    """The referrers the load signs up with: codes C00000 .. C09999.

    The schema is made by the served code's own `db upgrade`; the rows go in by plain
    SQL, so seeding depends on no store's internals and serves any checkout alike."""
    script = Path(sys.executable).with_name("referrals")
    upgrade = subprocess.run(
        [str(script), "db", "upgrade"],
        env=server_env(url, tmp, tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if upgrade.returncode:
        raise RuntimeError(f"referrals db upgrade failed:\n{upgrade.stdout[-3000:]}")
    insert_referrers(url)


def insert_referrers(url: str) -> None:
    """Codes C00000 .. C09999 into a migrated database (`referrals serve` migrates too)."""
    from sqlalchemy import create_engine, text

    rows = [{"user_id": f"r{n:05d}", "code": f"C{n:05d}"} for n in range(SPREAD)]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO referrers (user_id, code, code_key, created_at)"
                " VALUES (:user_id, :code, :code, 0)"
            ),
            rows,
        )
    engine.dispose()


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"bench_http_{uuid.uuid4().hex[:8]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def server(
    url: str, tmp: Path, workers: int = 1, tree: Path | None = None
) -> Iterator[tuple[str, str, int]]:
    port = free_port()
    env = server_env(url, tmp, tree)
    script = Path(sys.executable).with_name("referrals")
    log = (tmp / "server.log").open("w")
    # Output goes to a file: a pipe nobody reads would fill and stall the server.
    process = subprocess.Popen(
        [str(script), "serve", "--port", str(port), "--no-access-log", "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    key = ""
    while not key:
        found = re.search(r"^(rk_\S+)$", (tmp / "server.log").read_text(), re.M)
        key = found.group(1) if found else ""
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the server printed no admin key")
        time.sleep(0.1)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield base, key, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        shutil.copy(tmp / "server.log", Path(tempfile.gettempdir()) / "bench-signup-server.log")


def wrk(
    base: str, path: str, script: str, args: argparse.Namespace, pid: int | None = None
) -> dict[str, float]:
    """One wrk run; with `pid`, also the server's CPU microseconds per request."""
    cpu_before = cpu_seconds(pid) if pid else 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--timeout",
                "10s",
                "-s",
                lua.name,
                f"{base}{path}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(lua.name)
    match = re.search(r"^RESULT (.*)$", out.stdout, re.M)
    assert match, out.stdout
    result: dict[str, float] = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    if pid:
        used = cpu_seconds(pid) - cpu_before
        result["cpu_us"] = round(used / max(result["requests"], 1) * 1e6, 1)
    return result


def pause_for(rate: float, connections: int) -> int:
    """Milliseconds each connection waits so that all of them together make about `rate`."""
    return max(1, int(connections * 1000 / rate))


def healthz(
    base: str, pause: int, args: argparse.Namespace, pid: int | None = None, path: str = "/healthz"
) -> dict[str, float]:
    script = FLOOR_LUA % {"pause_ms": pause, "done": DONE, "delay": DELAY}
    return wrk(base, path, script, args, pid)


def signup_script(referrers: int, pause: int, key: str = "", path: str = "/v1/signups") -> str:
    """wrk's script for unique signups with codes C00000 .. (referrers - 1); a key if given."""
    # A fresh prefix per wrk run: wrk's random ids repeat from run to run.
    run = uuid.uuid4().hex[:8]
    auth = f'\n    ["Authorization"] = "Bearer {key}",' if key else ""
    values = {"referrers": referrers, "pause_ms": pause, "run": run, "path": path, "auth": auth}
    return LUA % (values | {"done": DONE, "delay": DELAY})


def pg_sessions(name: str) -> int:
    """Sessions ever opened on database `name`, read from another database (this read
    opens none on `name`). Backends report them within about a second of going idle."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@contextmanager
def autoanalyze(name: str) -> Iterator[Callable[[], None] | None]:
    """What the server's autovacuum would do between two runs, when it is off.

    Without autovacuum PostgreSQL never gathers statistics, and each pooled connection
    keeps the plans it made for its prepared statements while the tables were nearly
    empty: a signup's first statement then scans the whole referrals table, and each
    round is slower than the one before (BENCHMARKS.md, issue 27). A server with its
    default settings analyzes a table once a tenth of it changed; this runs ANALYZE
    after each run instead, on one session opened before the first is counted.
    Yields None when autovacuum is on: the server does it itself."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
        row = conn.execute("SHOW autovacuum").fetchone()
        if row is not None and row[0] == "on":
            yield None
            return
        yield lambda: conn.execute("ANALYZE").close()


def settle(pid: int, timeout: float = 20.0) -> float:
    """Wait until the server's processes use under 5% of a core (what a run left
    queued, e.g. outbox deliveries, must not load the next server's run); seconds waited."""
    start = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.025:
            break
        last = now
    return round(time.monotonic() - start, 1)


class Runs:
    """wrk runs against one server, each with the machine's load and, on PostgreSQL
    (`pg_name`), the sessions opened on the database during it."""

    def __init__(
        self,
        base: str,
        key: str,
        pid: int,
        pg_name: str,
        args: argparse.Namespace,
        analyze: Callable[[], None] | None = None,
    ):
        self.base, self.key, self.pid, self.pg_name, self.args = base, key, pid, pg_name, args
        self.analyze = analyze

    def run(self, path: str, script: str, cpu: bool = False) -> dict[str, float]:
        before = pg_sessions(self.pg_name) if self.pg_name else 0
        load = os.getloadavg()[0]
        result = wrk(self.base, path, script, self.args, self.pid if cpu else None)
        result["load_1m"] = round(max(load, os.getloadavg()[0]), 1)
        if self.pg_name:
            settle(self.pid)  # the outbox worker's deliveries left by the run included
            time.sleep(1.5)  # idle backends report their session counts within about a second
            result["new_sessions"] = pg_sessions(self.pg_name) - before
        if self.analyze is not None:
            self.analyze()
        return result

    def healthz(self, pause: int, cpu: bool = False) -> dict[str, float]:
        script = FLOOR_LUA % {"pause_ms": pause, "done": DONE, "delay": DELAY}
        return self.run("/healthz", script, cpu)

    def signups(self, referrers: int, pause: int, cpu: bool = False) -> dict[str, float]:
        return self.run("/v1/signups", signup_script(referrers, pause, self.key), cpu)


def extra(result: dict[str, float], prefix: str) -> dict[str, float]:
    """What a run reports besides rate and p99: its slowest request, load, new sessions."""
    out = {f"{prefix}max_ms": result["max_us"] / 1000, f"{prefix}load_1m": result["load_1m"]}
    if "new_sessions" in result:
        out[f"{prefix}new_sessions"] = result["new_sessions"]
    return out


def scenario(runs: Runs, referrers: int) -> dict[str, float]:
    peak = runs.signups(referrers, 0, cpu=True)
    half = runs.signups(referrers, pause_for(peak["rps"] / 2, runs.args.connections))
    return {
        "peak_rps": round(peak["rps"], 1),
        "peak_p50_ms": peak["p50_us"] / 1000,
        "peak_p99_ms": peak["p99_us"] / 1000,
        "peak_cpu_us": peak["cpu_us"],
        "half_rps": round(half["rps"], 1),
        "half_p50_ms": half["p50_us"] / 1000,
        "half_p99_ms": half["p99_us"] / 1000,
        "failed": peak["errors"] + peak["non2xx"] + half["errors"] + half["non2xx"],
        **extra(peak, "peak_"),
        **extra(half, "half_"),
    }


def one_round(runs: Runs) -> dict[str, Any]:
    floor = runs.healthz(0, cpu=True)
    floor_half = runs.healthz(pause_for(floor["rps"] / 2, runs.args.connections))
    return {
        "healthz_rps": round(floor["rps"], 1),
        "healthz_p99_ms": floor["p99_us"] / 1000,
        "healthz_cpu_us": floor["cpu_us"],
        "healthz_half_p50_ms": floor_half["p50_us"] / 1000,
        "healthz_half_p99_ms": floor_half["p99_us"] / 1000,
        **extra(floor, "healthz_"),
        **extra(floor_half, "healthz_half_"),
        "hot_referrer": scenario(runs, 1),
        "spread_10000": scenario(runs, SPREAD),
    }


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (all of the same shape), but failures summed,
    and the slowest request, new sessions and load the worst round's."""
    out: dict[str, Any] = {}
    for name, first in rounds[0].items():
        if isinstance(first, dict):
            out[name] = median_of([r[name] for r in rounds])
            continue
        figures = [float(r[name]) for r in rounds]
        if name == "failed":
            out[name] = sum(figures)
        elif name.endswith(("max_ms", "new_sessions", "load_1m")):
            out[name] = max(figures)
        else:
            out[name] = round(statistics.median(figures), 3)
    return out


def server_problems(log: Path) -> dict[str, int]:
    """Lines of the server's log that say a delivery failed, and deadlocks among them."""
    text = log.read_text(errors="replace")
    return {
        "dispatch_failures_logged": text.count("outbox dispatch"),
        "deadlocks_logged": text.lower().count("deadlock detected"),
    }


def wrk_arguments() -> argparse.ArgumentParser:
    """The options of a wrk benchmark against a served `referrals` (bench.clicks adds its own)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--rounds", type=int, default=1, help="the whole sequence, repeated")
    return parser


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")


def main() -> None:
    args = wrk_arguments().parse_args()
    require_wrk()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        seed_referrers(url, Path(tmp))
        pg_name = url.rsplit("/", 1)[1] if args.database == "postgresql" else ""
        with (
            server(url, Path(tmp), args.workers) as (base, key, pid),
            autoanalyze(pg_name) if pg_name else nullcontext() as analyze,
        ):
            runs = Runs(base, key, pid, pg_name, args, analyze)
            sessions_before = pg_sessions(pg_name) if pg_name else 0
            for round_no in range(args.rounds):
                rounds.append(one_round(runs))
                print(json.dumps({"round": round_no, **rounds[-1]}), file=sys.stderr, flush=True)
            sessions_after = pg_sessions(pg_name) if pg_name else 0
        problems = server_problems(Path(tmp) / "server.log")
    results: dict[str, Any] = {
        "database": args.database,
        "workers": args.workers,
        "rounds_run": args.rounds,
        **median_of(rounds),
    }
    for name in ("hot_referrer", "spread_10000"):
        row = results[name]
        row["vs_healthz"] = round(row["peak_rps"] / results["healthz_rps"], 2)
    if pg_name:
        results["autovacuum"] = "off: ANALYZE after each run" if analyze else "on"
        results["sessions_before_after"] = [sessions_before, sessions_after]
        results |= problems
    if args.rounds > 1:
        results["rounds"] = rounds
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
