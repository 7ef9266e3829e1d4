"""Signups over HTTP against a real `referrals serve`, load from wrk on 127.0.0.1.

Floor: the same server's `/healthz` (one database round trip) in the same run,
at its peak and at half its peak rate: the latency any request meets on this
machine at that load. Each peak also reports the server's CPU time per request
(its processes' user and system time over the run): steadier than requests per
second on a machine shared with the database and the load generator.

For each scenario, a hot referrer and signups spread over 10,000 referrers: peak
throughput with N connections, then latency at about half that rate (each
connection pauses a random time between requests, so the rate is held, not pushed).

    python -m bench.signup_http [--database sqlite|postgresql] [--duration 10]
                                [--connections 32] [--threads 2] [--workers 1]
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    .. "\\"errors\\":%d,\\"non2xx\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
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


def scenario(
    base: str, key: str, pid: int, referrers: int, args: argparse.Namespace
) -> dict[str, float]:
    def signups(pause: int, cpu_of: int | None = None) -> dict[str, float]:
        return wrk(base, "/v1/signups", signup_script(referrers, pause, key), args, cpu_of)

    peak = signups(0, cpu_of=pid)
    half = signups(pause_for(peak["rps"] / 2, args.connections))
    return {
        "peak_rps": round(peak["rps"], 1),
        "peak_p50_ms": peak["p50_us"] / 1000,
        "peak_p99_ms": peak["p99_us"] / 1000,
        "peak_cpu_us": peak["cpu_us"],
        "half_rps": round(half["rps"], 1),
        "half_p50_ms": half["p50_us"] / 1000,
        "half_p99_ms": half["p99_us"] / 1000,
        "failed": peak["errors"] + peak["non2xx"] + half["errors"] + half["non2xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        seed_referrers(url, Path(tmp))
        with server(url, Path(tmp), args.workers) as (base, key, pid):
            floor = healthz(base, 0, args, pid)
            floor_half = healthz(base, pause_for(floor["rps"] / 2, args.connections), args)
            results = {
                "database": args.database,
                "workers": args.workers,
                "healthz_rps": round(floor["rps"], 1),
                "healthz_p99_ms": floor["p99_us"] / 1000,
                "healthz_cpu_us": floor["cpu_us"],
                "healthz_half_p50_ms": floor_half["p50_us"] / 1000,
                "healthz_half_p99_ms": floor_half["p99_us"] / 1000,
                "hot_referrer": scenario(base, key, pid, 1, args),
                "spread_10000": scenario(base, key, pid, SPREAD, args),
            }
    for name in ("hot_referrer", "spread_10000"):
        row = results[name]
        assert isinstance(row, dict)
        row["vs_healthz"] = round(row["peak_rps"] / float(results["healthz_rps"]), 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
