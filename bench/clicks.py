"""Tracked-link clicks over HTTP against a real `referrals serve`, load from wrk on 127.0.0.1.

Issue 25's target: a click must cost about nothing, so `GET /l/{code}` must reach at
least 0.8 of the same server's `/healthz` throughput in the same run (`/healthz`
is one database round trip through the same middleware: the floor of any request
that touches the database). Then both at about half of their own peak rate, for
the latency a click meets when the server is not saturated (p99 and max).

Every click of the load is a recorded one, not the cheap path of a visitor sent on
without a click:
- a browser's User-Agent (a crawler's is not counted);
- codes spread over the 10,000 seeded referrers of a program with a landing URL;
- each request from its own client address. The click limit (`CLICKS_PER_ADDRESS` a
  window, api/links.py) counts the ASGI client, which uvicorn takes from
  `X-Forwarded-For` when the connection comes from a trusted proxy (127.0.0.1 by
  default, `FORWARDED_ALLOW_IPS`): the script sends a random 10.x.y.z per request,
  as a load balancer in front of the service would. No setting lifts the limit.
After the runs the `clicks` table is counted: every answered click must be a row
(at most one more per connection, for requests wrk cut off at the end of a run).

Before the measured rounds, `--warmup` seconds of clicks (not measured) follow the
codes in turn: a server's steady state, where the owner of each code followed is
kept (`services.clicks.LinkOwners`) and a click reads nothing. With `--warmup 0`
the first round measures a cold server (most clicks there are a code's first).

The server, the PostgreSQL session counts, the CPU time per request and the median
over `--rounds` are bench/signup_http.py's.

    python -m bench.clicks [--database sqlite|postgresql] [--duration 10]
                           [--connections 32] [--threads 2] [--workers 1] [--rounds 1]
                           [--warmup 10] [--tree PATH]

`--tree` serves another checkout's code (e.g. `git archive` of an earlier commit), for
before/after figures from the same benchmark.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.signup_http import (
    DELAY,
    DONE,
    SPREAD,
    Runs,
    database,
    extra,
    median_of,
    pause_for,
    require_wrk,
    seed_referrers,
    server,
    server_problems,
    settle,
    wrk,
    wrk_arguments,
)

TARGET = 0.8
LANDING = "https://example.com/welcome"
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)

CLICK_LUA = """
local referrers = %(referrers)d
local pause = %(pause_ms)d
function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end
function init(args)
  math.randomseed(tonumber(tid))
end
%(delay)s
function request()
  local code = string.format("C%%05d", math.random(0, referrers - 1))
  local address = string.format("10.%%d.%%d.%%d",
    math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format("GET", "/l/" .. code .. "?utm_source=bench&utm_medium=social", {
    ["User-Agent"] = "%(agent)s",
    ["Referer"] = "https://news.example.org/thread/42",
    ["X-Forwarded-For"] = address,
  })
end
%(done)s
"""


# The warm-up follows the codes in turn (thread k: codes k, k + threads, ...), so that
# each code is followed once within `referrers / threads` requests of each thread.
WARMUP_LUA = """
local referrers = %(referrers)d
local step = %(threads)d
local started = 0
function setup(thread)
  thread:set("index", started)
  started = started + 1
end
local n = -1
function request()
  if n < 0 then n = index end
  local code = string.format("C%%05d", n %% referrers)
  n = n + step
  return wrk.format("GET", "/l/" .. code, {
    ["User-Agent"] = "%(agent)s",
    ["X-Forwarded-For"] = string.format("10.%%d.%%d.%%d", n %% 251, math.random(0, 255),
      math.random(1, 254)),
  })
end
%(done)s
"""


def click_script(referrers: int, pause: int) -> str:
    values = {"referrers": referrers, "pause_ms": pause, "agent": BROWSER}
    return CLICK_LUA % (values | {"delay": DELAY, "done": DONE})


def warmup_script(referrers: int, threads: int) -> str:
    values = {"referrers": referrers, "threads": threads, "agent": BROWSER}
    return WARMUP_LUA % (values | {"done": DONE})


def prepare(base: str, key: str) -> None:
    """Give the default program (the seeded referrers') a landing URL, and check that a
    browser's click on a link is recorded: a redirect with a click id."""
    auth = {"Authorization": f"Bearer {key}"}
    answer = httpx.patch(f"{base}/v1/programs/default", json={"landing_url": LANDING}, headers=auth)
    answer.raise_for_status()
    sent = httpx.get(f"{base}/l/C00000", headers={"User-Agent": BROWSER})
    where = sent.headers.get("location", "")
    if sent.status_code != 302 or not where.startswith(LANDING) or "click_id=" not in where:
        raise RuntimeError(f"a browser's click was not recorded: {sent.status_code} {where}")


def count_clicks(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM clicks")).scalar_one())
    finally:
        engine.dispose()


def one_round(runs: Runs) -> dict[str, Any]:
    """Both routes at their peak, then both at about half of it."""
    connections = runs.args.connections
    floor = runs.healthz(0, cpu=True)
    peak = runs.run("/l/C00000", click_script(SPREAD, 0), cpu=True)
    settle(runs.pid)  # what the peak left to write, if anything, before the half runs
    floor_half = runs.healthz(pause_for(floor["rps"] / 2, connections))
    half = runs.run("/l/C00000", click_script(SPREAD, pause_for(peak["rps"] / 2, connections)))
    return {
        "healthz_rps": round(floor["rps"], 1),
        "healthz_cpu_us": floor["cpu_us"],
        "healthz_p99_ms": floor["p99_us"] / 1000,
        "healthz_half_rps": round(floor_half["rps"], 1),
        "healthz_half_p50_ms": floor_half["p50_us"] / 1000,
        "healthz_half_p99_ms": floor_half["p99_us"] / 1000,
        "clicks_rps": round(peak["rps"], 1),
        "clicks_cpu_us": peak["cpu_us"],
        "clicks_p99_ms": peak["p99_us"] / 1000,
        "clicks_half_rps": round(half["rps"], 1),
        "clicks_half_p50_ms": half["p50_us"] / 1000,
        "clicks_half_p99_ms": half["p99_us"] / 1000,
        "vs_healthz": round(peak["rps"] / floor["rps"], 3),
        "cpu_vs_healthz": round(peak["cpu_us"] / floor["cpu_us"], 3),
        "failed": sum(r["errors"] + r["non2xx"] for r in (floor, peak, floor_half, half)),
        "clicks_answered": peak["requests"] + half["requests"],
        **extra(floor, "healthz_"),
        **extra(floor_half, "healthz_half_"),
        **extra(peak, "clicks_"),
        **extra(half, "clicks_half_"),
    }


def main() -> None:
    parser = wrk_arguments()
    parser.add_argument("--tree", type=Path, default=None, help="serve this checkout's code")
    parser.add_argument(
        "--warmup", type=int, default=10, help="seconds of clicks first, not measured (0: none)"
    )
    args = parser.parse_args()
    require_wrk()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        seed_referrers(url, Path(tmp), args.tree)
        pg_name = url.rsplit("/", 1)[1] if args.database == "postgresql" else ""
        with server(url, Path(tmp), args.workers, args.tree) as (base, key, pid):
            prepare(base, key)
            runs = Runs(base, key, pid, pg_name, args)
            warmed = 0
            if args.warmup:  # not measured: the steady state of a server that has run
                warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
                warmed = int(
                    wrk(base, "/l/C00000", warmup_script(SPREAD, args.threads), warm)["requests"]
                )
                settle(pid)
            for round_no in range(args.rounds):
                rounds.append(one_round(runs))
                print(json.dumps({"round": round_no, **rounds[-1]}), file=sys.stderr, flush=True)
            settle(pid)
        # After the server stopped (cleanly: what it held is written): every click answered
        # is a row, plus the one of `prepare`, plus at most one per connection a run cut off.
        recorded = count_clicks(url) - 1
        problems = server_problems(Path(tmp) / "server.log")
    answered = warmed + sum(int(r["clicks_answered"]) for r in rounds)
    cut_off = (2 * args.rounds + 1) * args.connections
    if not answered <= recorded <= answered + cut_off:
        sys.exit(f"{answered} clicks answered but {recorded} recorded")
    results: dict[str, Any] = {
        "database": args.database,
        "workers": args.workers,
        "rounds_run": args.rounds,
        "tree": str(args.tree) if args.tree else "this checkout",
        "target_vs_healthz": TARGET,
        "warmup_s": args.warmup,
        "warmup_clicks": warmed,
        "clicks_recorded": recorded,
        **median_of(rounds),
    }
    results["clicks_answered"] = answered  # the warm-up's included
    if pg_name:
        results |= problems
    if args.rounds > 1:
        results["rounds"] = rounds
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
