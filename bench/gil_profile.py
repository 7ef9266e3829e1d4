"""Where a `referrals serve` process spends its interpreter lock under a wrk load.

py-spy (`pip install py-spy`, any venv; `--py-spy PATH` if not on PATH) samples the
thread holding the GIL while wrk sends unique signups (or `/healthz`) at the peak
rate; samples are grouped by the package of the innermost frame (self time) and by a
few frames a request passes through (inclusive time). One server process is bound
by its GIL, so these shares say what a faster signup has to remove.

    python -m bench.gil_profile [--database sqlite|postgresql] [--what signups|healthz]
                                [--tree PATH] [--duration 15] [--rate 100]
"""

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.signup_http import (
    SPREAD,
    database,
    healthz,
    seed_referrers,
    server,
    signup_script,
    wrk,
)

# Self time, by the innermost frame's file; the first pattern that matches names it.
PACKAGES = [
    ("SQLAlchemy", r"\(sqlalchemy/"),
    ("driver (psycopg)", r"\(psycopg"),
    ("pydantic", r"\(pydantic"),
    ("FastAPI", r"\(fastapi/"),
    ("Starlette", r"\(starlette/"),
    ("anyio (thread pool)", r"\(anyio/"),
    ("threading, queue (hand-offs)", r"\((threading|queue)\.py"),
    ("uvicorn, httptools", r"\(uvicorn/"),
    ("asyncio", r"\(asyncio/"),
    ("json", r"\(json/"),
    ("logging", r"\(logging/"),
    ("opentelemetry (FastAPI's telemetry check)", r"\(trace/|\(opentelemetry/|<frozen os>"),
    ("referrals: api", r"\(referrals/api/"),
    ("referrals: adapters", r"\(referrals/adapters/"),
    ("referrals: services, domain", r"\(referrals/(services|domain)/"),
    ("referrals: other", r"\(referrals/"),
]
# Inclusive time: samples with such a frame anywhere on the stack.
THROUGH = {
    "the use case (referrals/services)": r"\(referrals/services/",
    "SQLAlchemy and the driver": r"\(sqlalchemy/|\(psycopg",
    "FastAPI's dependency solving": r"solve_dependencies",
    "FastAPI's response serialising": r"serialize_response",
    "the outbox worker": r"\(referrals/worker|outbox",
    "logging": r"\(logging/",
}


def buckets(raw: Path) -> tuple[int, dict[str, dict[str, float]]]:
    """The number of samples, and their shares in per cent by package, frame passed and leaf."""
    total = 0
    own: collections.Counter[str] = collections.Counter()
    through: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        total += n
        leaves[frames[-1]] += n
        name = next((name for name, pat in PACKAGES if re.search(pat, frames[-1])), "other")
        own[name] += n
        for label, pat in THROUGH.items():
            if any(re.search(pat, frame) for frame in frames):
                through[label] += n

    def shares(counter: collections.Counter[str], most: int = 30) -> dict[str, float]:
        return {k: round(v / total * 100, 1) for k, v in counter.most_common(most)}

    return total, {
        "self_pct": shares(own),
        "through_pct": shares(through),
        "top_frames_pct": shares(leaves, 12),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--what", choices=["signups", "healthz"], default="signups")
    parser.add_argument("--tree", type=Path, default=None, help="serve this checkout's code")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    load = argparse.Namespace(threads=2, connections=32, duration=args.duration)
    warm = argparse.Namespace(threads=2, connections=32, duration=3)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        seed_referrers(url, Path(tmp), args.tree)
        with server(url, Path(tmp), 1, args.tree) as (base, key, pid):

            def run(options: argparse.Namespace, cpu_of: int | None = None) -> dict[str, float]:
                if args.what == "healthz":
                    return healthz(base, 0, options, cpu_of)
                script = signup_script(SPREAD, 0, key)
                return wrk(base, "/v1/signups", script, options, cpu_of)

            run(warm)
            raw = Path(tmp) / "py-spy.txt"
            record = [args.py_spy, "record", "--pid", str(pid), "--gil", "--nonblocking"]
            record += ["--rate", str(args.rate), "--duration", str(args.duration)]
            spy = subprocess.Popen(
                [*record, "--format", "raw", "-o", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
            result = run(load, pid)
            if spy.wait(timeout=120) != 0:
                sys.exit("py-spy failed (installed? allowed to attach?)")
            samples, profile = buckets(raw)
    # About the share of the time some thread held the lock: py-spy samples only then.
    held = samples / (args.rate * args.duration)
    print(
        json.dumps(
            {
                "database": args.database,
                "what": args.what,
                "rps": round(result["rps"], 1),
                "cpu_us": result["cpu_us"],
                "gil_held_pct": round(held * 100, 1),
                "gil_us_per_request": round(held * 1e6 / result["rps"], 1),
            }
            | profile
        )
    )


if __name__ == "__main__":
    main()
