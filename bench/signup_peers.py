"""Signups and `/healthz` against outside references started in the same run.

Peers, each started here: pinax-referrals (a Django app, `bench/peers/pinax_site`)
on gunicorn with one sync worker and SQLite in WAL mode, from its own venv
(`.venv-peer`, `make peer`); a bare Starlette app whose `/healthz` answers JSON,
served by uvicorn with `referrals serve`'s settings (`bench/peers/starlette_app.py`).
Ours: `referrals serve` as in `bench/signup_http.py`, once per checkout given
(`--tree PATH`, repeated: e.g. a `git worktree` of an older commit, then `.`;
by default the working tree), each on a database of its own seeded alike.

Rounds are interleaved: each round measures every server once per measurement,
one after the other with the same wrk settings (A B A B ...), and waits for the
server just measured to fall idle (its outbox worker, its collector) before the
next one starts. Measurements: the cheapest route at the peak (our `/livez`, which
touches no database, or `/healthz` on a checkout without it, vs Starlette's); unique
signups at the peak, with a hot referrer and spread over 10,000 (ours vs pinax);
ours at about half its peak rate of that round (p99). Ratios are the median over
rounds of each round's ratio, of requests per second and of the servers' CPU time
per request (the other's over ours: steadier when the machine is shared); p99 at
half the peak is the worst round's. On PostgreSQL each of our runs also reads
`pg_stat_database.sessions` of its database before and after it (new sessions
under a steady load: pool churn). Each round also times a durable SQLite commit on
the same disk, the bound of any server that commits each signup alone, in turn.

    python -m bench.signup_peers [--database sqlite|postgresql] [--rounds 3]
        [--duration 8] [--connections 32] [--threads 2] [--workers 1[,2]]
        [--tree PATH ...] [--scenarios hot,spread] [--warmup 2]
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.signup_http import (
    SPREAD,
    database,
    free_port,
    healthz,
    insert_referrers,
    pause_for,
    pg_sessions,
    server,
    settle,
    signup_script,
    wrk,
)

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench" / "peers"
PEER_VENV = ROOT / ".venv-peer"
SCENARIOS = {"hot": 1, "spread": SPREAD}
TARGETS = {"signup_vs_pinax": 3.0, "healthz_vs_starlette": 0.5, "half_p99_ms": 25.0}


@dataclass
class Server:
    label: str
    kind: str  # "referrals", "pinax" or "starlette"
    base: str
    pid: int
    key: str = ""
    signup_path: str = ""
    pg_name: str = ""  # our database's name on PostgreSQL: its sessions are counted
    # The cheapest route: Starlette's /healthz; ours /livez (no database), where the
    # checkout has it, else /healthz (a database read).
    probe_path: str = "/healthz"
    runs: list[dict[str, float | str]] = field(default_factory=list)


def wait_http(base: str, path: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers anything at all (the peer's GET /signup is a 405)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{base}{path}")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer in 60 s: {log.read_text()[-2000:]}")


@contextmanager
def process(
    command: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    # Output to a file: a pipe nobody reads would fill and stall the server.
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def pinax_env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "PINAX_DB": str(tmp / "pinax.db")}
    env["DJANGO_SETTINGS_MODULE"] = "pinax_site.settings"
    env.pop("PYTHONPATH", None)
    return env


def seed_pinax(tmp: Path) -> subprocess.Popen[bytes]:
    """Migrate and seed the peer's database, in the background (it takes seconds)."""
    if not (PEER_VENV / ".installed").exists():
        sys.exit("the peer's venv is missing: run `make peer`")
    python = str(PEER_VENV / "bin" / "python")
    command = [python, "-m", "pinax_site.seed", str(SPREAD)]
    return subprocess.Popen(command, cwd=PEERS, env=pinax_env(tmp), stdout=subprocess.DEVNULL)


@contextmanager
def pinax(tmp: Path, seeding: subprocess.Popen[bytes]) -> Iterator[Server]:
    if seeding.wait() != 0:
        raise RuntimeError("seeding the peer's database failed")
    env = pinax_env(tmp)
    port = free_port()
    gunicorn = [str(PEER_VENV / "bin" / "gunicorn"), "--workers", "1", "--worker-class", "sync"]
    gunicorn += ["--bind", f"127.0.0.1:{port}", "--no-control-socket", "pinax_site.wsgi"]
    log = tmp / "pinax.log"
    with process(gunicorn, PEERS, env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base, "/signup", proc, log)
        yield Server("pinax-referrals", "pinax", base, proc.pid, signup_path="/signup")


@contextmanager
def starlette(tmp: Path) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, "-m", "bench.peers.starlette_app", str(port)]
    log = tmp / "starlette.log"
    with process(command, ROOT, dict(os.environ), log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_http(base, "/healthz", proc, log)
        yield Server("Starlette", "starlette", base, proc.pid)


def label_of(tree: Path) -> str:
    """`folder@commit`, `+changes` when the checkout has uncommitted changes."""
    git = ["git", "-C", str(tree)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no", "--", "src"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{tree.resolve().name}@{commit}{'+changes' if dirty else ''}"


@contextmanager
def ours(kind: str, tmp: Path, tree: Path, workers: int) -> Iterator[Server]:
    tmp.mkdir()
    with database(kind, tmp) as url, server(url, tmp, workers, tree) as (base, key, pid):
        insert_referrers(url)  # `serve` migrated; nothing has been asked yet
        pg_name = url.rsplit("/", 1)[1] if kind == "postgresql" else ""
        label = label_of(tree) + (f" --workers {workers}" if workers > 1 else "")
        probe = "/livez" if httpx.get(f"{base}/livez").status_code == 200 else "/healthz"
        yield Server(label, "referrals", base, pid, key, "/v1/signups", pg_name, probe)


def measure(
    srv: Server, what: str, pause: int, args: argparse.Namespace, round_no: int
) -> dict[str, float | str]:
    """One wrk run against `srv`; recorded in `srv.runs` and returned."""
    sessions = pg_sessions(srv.pg_name) if srv.pg_name else 0
    load = os.getloadavg()[0]  # the machine's: other work on it slows the peers unevenly
    if what == "healthz":
        result = healthz(srv.base, pause, args, srv.pid, srv.probe_path)
    else:
        referrers = SCENARIOS[what.removesuffix("_half")]
        script = signup_script(referrers, pause, srv.key, srv.signup_path)
        result = wrk(srv.base, srv.signup_path, script, args, srv.pid)
    row: dict[str, float | str] = {
        "round": round_no,
        "server": srv.label,
        "what": what,
        "rps": round(result["rps"], 1),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "cpu_us": result["cpu_us"],
        "failed": result["errors"] + result["non2xx"],
        "load_1m": round(max(load, os.getloadavg()[0]), 1),
    }
    row["settle_s"] = settle(srv.pid)
    if srv.pg_name:
        time.sleep(1.5)  # idle backends report their session counts within about a second
        row["sessions_before"] = sessions
        row["sessions_after"] = pg_sessions(srv.pg_name)
        row["new_sessions"] = int(row["sessions_after"]) - sessions
    srv.runs.append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def commit_ms(folder: Path, commits: int = 300) -> float:
    """Wall time of one durable SQLite commit here (WAL, `synchronous=FULL`, one row, one
    connection, one after another): the disk's fsync, which bounds any server that commits
    once per signup and one at a time. It varies with the machine's other I/O."""
    path = folder / "commit-floor.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    start = time.perf_counter()
    for n in range(commits):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (str(n),))
        db.execute("COMMIT")
    seconds = time.perf_counter() - start
    db.close()
    return round(seconds / commits * 1000, 3)


def one_round(
    round_no: int, mine: list[Server], peer: Server, floor: Server, args: argparse.Namespace
) -> None:
    """Each measurement on every server in turn, ours first, in the order given."""
    for srv in [*mine, floor]:
        measure(srv, "healthz", 0, args, round_no)
    peaks: dict[tuple[str, str], float] = {}
    for name in args.scenarios:
        for srv in [*mine, peer]:
            peaks[srv.label, name] = float(measure(srv, name, 0, args, round_no)["rps"])
    for name in args.scenarios:
        for srv in mine:
            pause = pause_for(peaks[srv.label, name] / 2, args.connections)
            measure(srv, f"{name}_half", pause, args, round_no)


def values(srv: Server, what: str, key: str) -> list[float]:
    return [float(r[key]) for r in sorted(srv.runs, key=lambda r: r["round"]) if r["what"] == what]


def ratios(
    mine: Server, other: Server, what: str, other_what: str, key: str = "rps"
) -> list[float]:
    """Each round's `key` of ours over the other's (for CPU per request, the other's over ours:
    how many times as many requests ours serves per CPU second)."""
    pairs = zip(values(mine, what, key), values(other, other_what, key), strict=True)
    return [round(b / a if key == "cpu_us" else a / b, 2) for a, b in pairs]


def summarize(
    mine: list[Server], peer: Server, floor: Server, args: argparse.Namespace
) -> dict[str, object]:
    def median(xs: list[float]) -> float:
        return round(statistics.median(xs), 2) if xs else 0.0

    def peak(srv: Server, what: str) -> dict[str, float]:
        return {
            "rps": median(values(srv, what, "rps")),
            "cpu_us": median(values(srv, what, "cpu_us")),
            "p99_ms": median(values(srv, what, "p99_ms")),
        }

    loads = [float(r["load_1m"]) for srv in [*mine, peer, floor] for r in srv.runs]
    out: dict[str, object] = {
        "load_1m": {"min": min(loads), "median": median(loads), "max": max(loads)},
        "pinax": {name: peak(peer, name) for name in args.scenarios},
        "starlette": {"healthz": peak(floor, "healthz")},
    }
    for srv in mine:
        row: dict[str, object] = {"probe": srv.probe_path, "healthz": peak(srv, "healthz")}
        healthz_ratios = ratios(srv, floor, "healthz", "healthz")
        row["healthz_vs_starlette"] = {
            "median": median(healthz_ratios),
            "rounds": healthz_ratios,
            "cpu": median(ratios(srv, floor, "healthz", "healthz", "cpu_us")),
        }
        for name in args.scenarios:
            by_round = ratios(srv, peer, name, name)
            half = values(srv, f"{name}_half", "p99_ms")
            row[name] = peak(srv, name) | {
                "vs_pinax": median(by_round),
                "vs_pinax_rounds": by_round,
                "cpu_vs_pinax": median(ratios(srv, peer, name, name, "cpu_us")),
                "half_rps": median(values(srv, f"{name}_half", "rps")),
                "half_p99_ms_worst": max(half),
                "half_p99_ms_median": median(half),
            }
        row["failed"] = sum(float(r["failed"]) for r in srv.runs)
        if srv.pg_name:
            row["sessions_before_after"] = [
                srv.runs[0]["sessions_before"],
                srv.runs[-1]["sessions_after"],
            ]
            row["new_sessions"] = {
                what: values(srv, what, "new_sessions")
                for what in ["healthz", *args.scenarios, *(f"{n}_half" for n in args.scenarios)]
            }
        out[srv.label] = row
    return out


def markdown(summary: dict[str, object], mine: list[Server], args: argparse.Namespace) -> str:
    pinax_row = summary["pinax"]
    starlette_row = summary["starlette"]
    load = summary["load_1m"]
    assert isinstance(pinax_row, dict) and isinstance(starlette_row, dict)
    assert isinstance(load, dict)
    lines = [
        f"{args.database}, {args.rounds} rounds of {args.duration} s, wrk -t{args.threads}"
        f" -c{args.connections}, load average {load['min']} to {load['max']}; medians over rounds"
        " (ratios: median of each round's ratio, in brackets the same of CPU time per request,"
        " the other's over ours; half p99: worst round)",
        "",
        "| server | `/healthz` rps (CPU µs) | vs Starlette | "
        + " | ".join(f"{n} rps (CPU µs) | {n} vs pinax | {n} half p99 ms" for n in args.scenarios)
        + " |",
        "|---|---:|---:|" + "---:|---:|---:|" * len(args.scenarios),
    ]
    for srv in mine:
        row = summary[srv.label]
        assert isinstance(row, dict)
        cells = [
            srv.label,
            f"{row['healthz']['rps']:,.0f} ({row['healthz']['cpu_us']:,.0f})",
            f"**{row['healthz_vs_starlette']['median']}x** ({row['healthz_vs_starlette']['cpu']}x)",
        ]
        for n in args.scenarios:
            cells += [
                f"{row[n]['rps']:,.0f} ({row[n]['cpu_us']:,.0f})",
                f"**{row[n]['vs_pinax']}x** ({row[n]['cpu_vs_pinax']}x)",
                f"{row[n]['half_p99_ms_worst']}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    peer_cells = ["pinax-referrals (gunicorn, 1 sync worker)", "", ""]
    for n in args.scenarios:
        peer_cells += [f"{pinax_row[n]['rps']:,.0f} ({pinax_row[n]['cpu_us']:,.0f})", "", ""]
    lines.append("| " + " | ".join(peer_cells) + " |")
    floor = starlette_row["healthz"]
    floor_cells = ["Starlette (uvicorn, serve's settings)"]
    floor_cells += [f"{floor['rps']:,.0f} ({floor['cpu_us']:,.0f})", ""]
    floor_cells += ["", "", ""] * len(args.scenarios)
    lines.append("| " + " | ".join(floor_cells) + " |")
    for srv in mine:
        if srv.pg_name:
            row = summary[srv.label]
            assert isinstance(row, dict)
            before, after = row["sessions_before_after"]
            lines.append(
                f"\n{srv.label}: pg_stat_database.sessions {before} before the first run, {after}"
                f" after the last; new sessions per run: {row['new_sessions']}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per server, discarded")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workers", default="1", help="our server's processes; a list serves each tree with each"
    )
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        default=[],
        help="serve this checkout's code (repeat for several, measured in this order in"
        " each round); default: this working tree",
    )
    parser.add_argument("--scenarios", default="hot,spread")
    args = parser.parse_args()
    args.scenarios = args.scenarios.split(",")
    args.workers = [int(n) for n in args.workers.split(",")]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: make tools")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        trees = args.tree or [ROOT]
        seeding = seed_pinax(Path(tmp))
        served = [(tree, workers) for tree in trees for workers in args.workers]
        starting = [
            ours(args.database, Path(tmp) / f"ours{i}", tree, workers)
            for i, (tree, workers) in enumerate(served)
        ] + [pinax(Path(tmp), seeding), starlette(Path(tmp))]
        # Started side by side (seconds each); each is stopped by the stack, even if another
        # failed to start.
        with ThreadPoolExecutor(len(starting)) as pool:
            started = [
                future.result()
                for future in [pool.submit(stack.enter_context, cm) for cm in starting]
            ]
        *mine, peer, floor = started
        if len({srv.label for srv in mine}) < len(mine):
            for i, srv in enumerate(mine):
                srv.label = f"{srv.label}#{i}"
        if args.warmup:
            warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
            for srv in [*mine, peer]:
                script = signup_script(SPREAD, 0, srv.key, srv.signup_path)
                wrk(srv.base, srv.signup_path, script, warm)
                settle(srv.pid)
            for srv in [*mine, floor]:
                healthz(srv.base, 0, warm)
        commits = []
        for round_no in range(1, args.rounds + 1):
            commits.append(commit_ms(Path(tmp)))
            one_round(round_no, mine, peer, floor, args)
        summary = summarize(mine, peer, floor, args)
    result = {
        "database": args.database,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "connections": args.connections,
        "threads": args.threads,
        "workers": args.workers,
        "targets": TARGETS,
        "sqlite_commit_ms": {"median": statistics.median(commits), "rounds": commits},
        "summary": summary,
        "runs": [run for srv in [*mine, peer, floor] for run in srv.runs],
    }
    print(json.dumps(result))
    print()
    print(markdown(summary, mine, args))
    print(
        f"\nA durable SQLite commit took {statistics.median(commits)} ms here (median of rounds:"
        f" {commits}), one after another: at most {1000 / statistics.median(commits):,.0f}"
        " commits per second for a server that commits each signup alone, in turn."
    )


if __name__ == "__main__":
    main()
