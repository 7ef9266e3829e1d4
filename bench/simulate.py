"""Backtest and simulation of recorded signups on SQLite or PostgreSQL, against a floor: a
plain SQL scan of the same rows (every column, in id order, through the same driver).

The referrals are seeded with bulk inserts (not through the API), with receipts as the
signup path writes them, over most of a year. The window covers them all, so every
referral is priced again. Each measurement runs in a process of its own, so its peak
RSS is that of the measured work alone; the measurements only read, so they share one
database, and an unrecorded scan first warms the page cache for all of them.

    python -m bench.simulate [--sizes 10000,100000,1000000] [--per-referrer 10]
                             [--database sqlite|postgresql] [--rounds 1]
"""

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.payout import PG_SERVER, admin_sql, copy_into, peak_rss_mb

START = datetime(2025, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=360)
KINDS = ("floor", "store_read", "replay_read", "backtest", "proposal", "checks_report")
FLOOR_SQL = "SELECT * FROM referrals WHERE program_id = 'default' ORDER BY id"
REFERRER_COLUMNS = "program_id, user_id, code, code_key, referral_count, created_at"
REFERRAL_COLUMNS = (
    "id, program_id, referee_id, referrer_id, code, ordinal, reward_cents, status,"
    " created_at, payable_at, receipt"
)
TIERS = ((25, 2500), (10, 2000), (5, 1500), (1, 1000))  # the default schedule, highest first


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def referrer_rows(size: int, per_referrer: int) -> Iterator[tuple[object, ...]]:
    for n in range(size // per_referrer):
        code = f"C{n:07d}"
        yield ("default", f"r{n:07d}", code, code, per_referrer, micros(START))


def receipt(ordinal: int, disposable: bool) -> tuple[str, int]:
    """A receipt as `Receipt.to_dict` writes it (compact JSON), and the tier's cents."""
    threshold, cents = next(t for t in TIERS if t[0] <= ordinal)
    checks = [
        {"name": "email_alias", "passed": True, "detail": ""},
        {
            "name": "disposable_email",
            "passed": not disposable,
            "detail": "mailinator.com is a disposable domain" if disposable else "",
        },
    ]
    body = {
        "rule": "signup",
        "tier_threshold": threshold,
        "tier_cents": cents,
        "hold_days": 0,
        "checks": checks,
        "cap": None,
        "program": "default",
        "rule_version": 1,
    }
    return json.dumps(body, separators=(",", ":")), cents


def referral_rows(size: int, per_referrer: int) -> Iterator[tuple[object, ...]]:
    from referrals.domain.model import ulid

    referrers = size // per_referrer
    step = SPAN / size
    for i in range(size):
        at = START + step * i
        ordinal = i // referrers + 1
        disposable = i % 50 == 7  # 2% held by the disposable-address check
        text, cents = receipt(ordinal, disposable)
        status = "held" if disposable else ("paid" if at < START + SPAN * 0.9 else "pending")
        if disposable and i % 100 == 7:
            status = "rejected"
        millis = micros(at) // 1000
        yield (
            ulid(millis << 80 | i),  # minted when written, as `new_id` does
            "default",
            f"u{i:08d}",
            f"r{i % referrers:07d}",
            f"C{i % referrers:07d}",
            ordinal,
            cents,
            status,
            micros(at),
            micros(at),
            text,
        )


def default_program(url: str) -> None:
    from referrals.adapters.clock import SystemClock
    from referrals.bootstrap import build_store
    from referrals.domain.program import RuleVersion
    from referrals.services.programs import ensure_default_program

    store = build_store(url, migrate=True)
    ensure_default_program(store, SystemClock(), RuleVersion())
    store.dispose()  # type: ignore[attr-defined]


def seed_sqlite(path: Path, size: int, per_referrer: int) -> str:
    url = f"sqlite:///{path}"
    default_program(url)
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            f"INSERT INTO referrers ({REFERRER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            referrer_rows(size, per_referrer),
        )
        db.executemany(
            f"INSERT INTO referrals ({REFERRAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            referral_rows(size, per_referrer),
        )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("ANALYZE")
    db.close()
    return url


def seed_postgresql(name: str, size: int, per_referrer: int) -> str:
    admin_sql(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    default_program(url)
    copy_into(
        name,
        ("referrers", REFERRER_COLUMNS, referrer_rows(size, per_referrer)),
        ("referrals", REFERRAL_COLUMNS, referral_rows(size, per_referrer)),
    )
    return url


@contextmanager
def seeded(database: str, size: int, per_referrer: int, tmp: Path) -> Iterator[str]:
    if database == "sqlite":
        yield seed_sqlite(tmp / "bench.db", size, per_referrer)
        return
    name = f"bench_simulate_{uuid.uuid4().hex[:8]}"
    try:
        yield seed_postgresql(name, size, per_referrer)
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def floor(url: str) -> int:
    """The least a backtest must do: read every row of the program once, in id order."""
    rows = 0
    if url.startswith("postgresql"):
        import psycopg

        with (
            psycopg.connect(url.replace("+psycopg", "")) as conn,
            conn.cursor(name="scan") as cursor,  # server-side: rows stream
        ):
            cursor.itersize = 2000
            for _ in cursor.execute(FLOOR_SQL):
                rows += 1
        return rows
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    for _ in db.execute(FLOOR_SQL):
        rows += 1
    db.close()
    return rows


def measured(kind: str, url: str) -> Callable[[], int]:
    from referrals.bootstrap import build_store
    from referrals.domain.model import first_id_at
    from referrals.domain.program import RuleVersion
    from referrals.domain.simulation import Window
    from referrals.domain.tiers import TierSchedule
    from referrals.services.simulations import MAX_ROWS, PAGE, checks_report, pages, simulate

    if kind == "floor":
        return lambda: floor(url)
    store = build_store(url)
    window = Window(START, START + SPAN)
    if kind == "checks_report":
        return lambda: checks_report(store, "default", window).scanned
    stop = first_id_at(window.end)
    if kind == "store_read":  # the pages the checks report reads, as domain objects
        return lambda: sum(len(p) for p in pages(store, "default", None, stop, PAGE, MAX_ROWS))
    if kind == "replay_read":  # what a backtest reads (ports.replay), and no more
        return lambda: sum(len(p) for p in store.replay.rows("default", stop, PAGE))
    proposal = None
    if kind == "proposal":
        proposal = RuleVersion(tiers=TierSchedule.parse("1:800,3:1200"), monthly_cap_cents=5000)

    def run() -> int:
        result = simulate(store, "default", window, proposal, limit=20)
        if proposal is None:
            assert result.changed == 0 and result.simulated == result.actual
        return result.scanned

    return run


def child(kind: str, url: str) -> None:
    work = measured(kind, url)  # imports and connections: not the measured work
    before = peak_rss_mb()
    start = time.perf_counter()
    rows = work()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": rows,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": before,
            }
        )
    )


def measure(kind: str, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.simulate", "--child", kind, url],
        capture_output=True,
        text=True,
    )
    if out.returncode:  # say why: the child's output is captured
        sys.exit(f"the {kind} measurement failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--per-referrer", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each kind this many times, in turn, and keep its fastest time and its"
        " largest peak RSS (on a shared machine, the least disturbed round)",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "URL"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            row: dict[str, float] = {"signups": size, "referrers": size // args.per_referrer}
            with seeded(args.database, size, args.per_referrer, Path(tmp)) as url:
                measure("floor", url)  # warms the page cache; not recorded
                for _ in range(args.rounds):
                    for kind in KINDS:
                        got = measure(kind, url)
                        assert got["rows"] == size, got
                        seconds = round(got["seconds"], 3)
                        row[f"{kind}_s"] = min(row.get(f"{kind}_s", seconds), seconds)
                        rss = round(got["peak_rss_mb"], 1)
                        row[f"{kind}_rss_mb"] = max(row.get(f"{kind}_rss_mb", rss), rss)
            for kind in KINDS[1:]:
                row[f"{kind}_ratio"] = round(row[f"{kind}_s"] / row["floor_s"], 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"{args.database}:")
    print(
        "| signups | referrers | floor: SQL scan s | store read s | replay read s | backtest s |"
        " proposal s | checks report s | peak RSS MB: floor / store read / replay read /"
        " backtest / proposal / report |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [f"{r['signups']:,}", f"{r['referrers']:,}", str(r["floor_s"])]
        cells += [f"{r[f'{kind}_s']} ({r[f'{kind}_ratio']}x)" for kind in KINDS[1:]]
        cells.append(" / ".join(str(r[f"{kind}_rss_mb"]) for kind in KINDS))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
