"""Payout run on SQLite or PostgreSQL against a floor: one raw SQL UPDATE of the same rows.

Each measurement runs in its own process on its own copy of the same seeded
database, so peak RSS is that of the measured work alone.

    python -m bench.payout [--sizes 10000,100000,1000000] [--per-referrer 10]
                           [--database sqlite|postgresql]
"""

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PERIOD = "2026-10"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
FLOOR_SQL = (
    "UPDATE referrals SET status = 'paid', payout_period = '2026-10'"
    " WHERE status = 'pending' AND payable_at < 1793491200000000"
)
OCTOBER_MICROS = 1_790_000_000_000_000  # 2026-09-20: inside the period paid


REFERRER_COLUMNS = "user_id, code, code_key, referral_count, created_at"
REFERRAL_COLUMNS = (
    "id, referee_id, referrer_id, code, ordinal, reward_cents, status, created_at, payable_at"
)


def referrer_rows(rewards: int, per_referrer: int) -> Iterator[tuple[object, ...]]:
    for n in range(rewards // per_referrer):
        yield (f"r{n:07d}", f"C{n:07d}", f"C{n:07d}", per_referrer, OCTOBER_MICROS)


def referral_rows(rewards: int, per_referrer: int) -> Iterator[tuple[object, ...]]:
    referrers = rewards // per_referrer
    for i in range(rewards):
        ordinal = i // referrers + 1
        yield (
            f"{i:026d}",
            f"u{i:08d}",
            f"r{i % referrers:07d}",
            f"C{i % referrers:07d}",
            ordinal,
            1000 + 500 * (ordinal >= 5),
            "pending",
            OCTOBER_MICROS + i,
            OCTOBER_MICROS + i,  # no hold: payable when earned
        )


def seed(path: Path, rewards: int, per_referrer: int) -> None:
    from referrals.bootstrap import build_store

    build_store(f"sqlite:///{path}", migrate=True).dispose()  # type: ignore[attr-defined]
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            f"INSERT INTO referrers ({REFERRER_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            referrer_rows(rewards, per_referrer),
        )
        db.executemany(
            f"INSERT INTO referrals ({REFERRAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            referral_rows(rewards, per_referrer),
        )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def admin_sql(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def seed_postgresql(name: str, rewards: int, per_referrer: int) -> None:
    """A template database: every measurement gets a copy (CREATE DATABASE ... TEMPLATE)."""
    from referrals.bootstrap import build_store

    admin_sql(f'CREATE DATABASE "{name}"')
    build_store(f"{PG_SERVER}/{name}", migrate=True).dispose()  # type: ignore[attr-defined]
    copy_into(
        name,
        ("referrers", REFERRER_COLUMNS, referrer_rows(rewards, per_referrer)),
        ("referrals", REFERRAL_COLUMNS, referral_rows(rewards, per_referrer)),
    )


def copy_into(name: str, *tables: tuple[str, str, Iterable[Sequence[object]]]) -> None:
    """COPY each (table, columns, rows) into the PostgreSQL database `name`, then VACUUM
    ANALYZE it, so the planner knows the rows: the fast way to seed a benchmark."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(url) as conn:
        for table, columns, rows in tables:
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def floor(target: str) -> None:
    """The least any payout must do: flip every eligible row in one statement."""
    if target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(target.replace("+psycopg", "")) as conn:
            conn.execute(FLOOR_SQL)
        return
    db = sqlite3.connect(target.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("BEGIN IMMEDIATE")
    db.execute(FLOOR_SQL)
    db.execute("COMMIT")
    db.close()


def payout(target: str, reports: Path) -> None:
    from referrals.adapters.clock import SystemClock
    from referrals.adapters.reports.local import LocalReportStore
    from referrals.bootstrap import build_store
    from referrals.domain.periods import Period
    from referrals.services.payouts import run_payout

    store = build_store(target)
    run = run_payout(store, LocalReportStore(reports), SystemClock(), Period.parse(PERIOD))
    assert run.total_cents > 0


def warm_up() -> None:
    """Import the service before the clock starts: start-up is not the payout's cost."""
    import referrals.adapters.reports.local
    import referrals.adapters.sql.store
    import referrals.services.payouts  # noqa: F401


def measure(kind: str, target: str, reports: Path) -> dict[str, float]:
    """Run one measurement in a fresh process; time excludes interpreter start-up."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.payout", "--child", kind, target, str(reports)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def child(kind: str, target: str, reports: Path) -> None:
    if kind == "payout":
        warm_up()
    before = peak_rss_mb()
    start = time.perf_counter()
    if kind == "payout":
        payout(target, reports)
    else:
        floor(target)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across exec,
    so a child would report the parent's peak at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


@contextmanager
def copies(
    database: str, size: int, per_referrer: int, tmp: Path
) -> Iterator[Callable[[str], str]]:
    """Seed a template once; yield a function making a fresh copy of it per measurement."""
    if database == "sqlite":
        template = tmp / "template.db"
        seed(template, size, per_referrer)

        def sqlite_copy(kind: str) -> str:
            target = tmp / kind / "bench.db"
            target.parent.mkdir()
            shutil.copy(template, target)
            return f"sqlite:///{target}"

        yield sqlite_copy
        return
    name = f"bench_payout_{uuid.uuid4().hex[:8]}"
    made = [name]
    seed_postgresql(name, size, per_referrer)

    def postgresql_copy(kind: str) -> str:
        made.append(f"{name}_{kind}")
        admin_sql(f'CREATE DATABASE "{made[-1]}" TEMPLATE "{name}"')
        return f"{PG_SERVER}/{made[-1]}"

    try:
        yield postgresql_copy
    finally:
        for database_name in reversed(made):
            admin_sql(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--per-referrer", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "TARGET", "REPORTS"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            row: dict[str, float] = {"rewards": size, "referrers": size // args.per_referrer}
            with copies(args.database, size, args.per_referrer, Path(tmp)) as copy:
                for kind in ("floor", "payout"):
                    measured = measure(kind, copy(kind), Path(tmp) / "reports")
                    row[f"{kind}_s"] = round(measured["seconds"], 3)
                    row[f"{kind}_rss_mb"] = round(measured["peak_rss_mb"], 1)
            row["ratio"] = round(row["payout_s"] / row["floor_s"], 2)
            row["payout_us_per_reward"] = round(row["payout_s"] / size * 1e6, 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"{args.database}:")
    print("| rewards | referrers | floor s | payout s | ratio | µs/reward | payout peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rewards']:,} | {r['referrers']:,} | {r['floor_s']} | {r['payout_s']} |"
            f" {r['ratio']}x | {r['payout_us_per_reward']} | {r['payout_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
