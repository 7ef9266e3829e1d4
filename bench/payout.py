"""Payout run on SQLite against a floor: one raw SQL UPDATE of the same rows.

Each measurement runs in its own process on its own copy of the same seeded
database, so peak RSS is that of the measured work alone.

    python -m bench.payout [--sizes 10000,100000,1000000] [--per-referrer 10]
"""

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERIOD = "2026-10"
OCTOBER_MICROS = 1_790_000_000_000_000  # 2026-09-20: inside the period paid
CUTOFF_MICROS = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z


def seed(path: Path, rewards: int, per_referrer: int) -> None:
    from referrals.bootstrap import build_store

    build_store(f"sqlite:///{path}", migrate=True).dispose()  # type: ignore[attr-defined]
    db = sqlite3.connect(path)
    referrers = rewards // per_referrer
    with db:
        db.executemany(
            "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                (f"r{n:07d}", f"C{n:07d}", f"C{n:07d}", per_referrer, OCTOBER_MICROS)
                for n in range(referrers)
            ),
        )
        db.executemany(
            "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal, reward_cents,"
            " status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                (
                    f"{i:026d}",
                    f"u{i:08d}",
                    f"r{i % referrers:07d}",
                    f"C{i % referrers:07d}",
                    i // referrers + 1,
                    1000 + 500 * (i // referrers >= 4),
                    OCTOBER_MICROS + i,
                )
                for i in range(rewards)
            ),
        )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def floor(path: Path) -> None:
    """The least any payout must do: flip every eligible row in one statement."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("BEGIN IMMEDIATE")
    db.execute(
        "UPDATE referrals SET status = 'paid', payout_period = ?"
        " WHERE status = 'pending' AND created_at < ?",
        (PERIOD, CUTOFF_MICROS),
    )
    db.execute("COMMIT")
    db.close()


def payout(path: Path) -> None:
    from referrals.adapters.clock import SystemClock
    from referrals.adapters.reports.local import LocalReportStore
    from referrals.bootstrap import build_store
    from referrals.domain.periods import Period
    from referrals.services.payouts import run_payout

    store = build_store(f"sqlite:///{path}")
    run = run_payout(
        store, LocalReportStore(path.parent / "reports"), SystemClock(), Period.parse(PERIOD)
    )
    assert run.total_cents > 0


def warm_up() -> None:
    """Import the service before the clock starts: start-up is not the payout's cost."""
    import referrals.adapters.reports.local
    import referrals.adapters.sql.store
    import referrals.services.payouts  # noqa: F401


def measure(kind: str, path: Path) -> dict[str, float]:
    """Run one measurement in a fresh process; time excludes interpreter start-up."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.payout", "--child", kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def child(kind: str, path: Path) -> None:
    work = {"floor": floor, "payout": payout}[kind]
    if kind == "payout":
        warm_up()
    before = peak_rss_mb()
    start = time.perf_counter()
    work(path)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across exec,
    so a child would report the parent's peak at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--per-referrer", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            template = Path(tmp) / "template.db"
            seed(template, size, args.per_referrer)
            row: dict[str, float] = {"rewards": size, "referrers": size // args.per_referrer}
            for kind in ("floor", "payout"):
                target = Path(tmp) / kind / "bench.db"
                target.parent.mkdir()
                shutil.copy(template, target)
                measured = measure(kind, target)
                row[f"{kind}_s"] = round(measured["seconds"], 3)
                row[f"{kind}_rss_mb"] = round(measured["peak_rss_mb"], 1)
            row["ratio"] = round(row["payout_s"] / row["floor_s"], 2)
            row["payout_us_per_reward"] = round(row["payout_s"] / size * 1e6, 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| rewards | referrers | floor s | payout s | ratio | µs/reward | payout peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rewards']:,} | {r['referrers']:,} | {r['floor_s']} | {r['payout_s']} |"
            f" {r['ratio']}x | {r['payout_us_per_reward']} | {r['payout_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
