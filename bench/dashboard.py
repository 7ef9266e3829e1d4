"""The admin dashboard's overview on a year of referrals, against a floor in the same run.

Seeds N referrals spread evenly over the last 12 months (or `--months`; bulk inserts,
not the API):
ids minted at their created_at as a signup mints them, last month's rewards pending,
older ones paid by monthly runs, one in 200 held. Then, in one process:

- floor: `GET /healthz` through the same TestClient (one database round trip);
- data: `services.dashboard_overview.overview` (the stats port's three queries and the runs);
- page: `GET /dashboard` signed in, the overview computed on every request (the cache
  off), and with the cache on (what a refresh within a few seconds costs);
- full scan: the signups-per-day aggregate without the id range, as a dashboard that
  scanned every referral would run it (for scale, not served by anything).

    python -m bench.dashboard [--referrals 1000000] [--referrers 20000] [--months 12]
                              [--repeat 5] [--database sqlite|postgresql]
"""

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.payout import PG_SERVER, admin_sql

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERRER_COLUMNS = "user_id, code, code_key, referral_count, created_at"
REFERRAL_COLUMNS = (
    "id, referee_id, referrer_id, code, ordinal, reward_cents, status, created_at,"
    " payout_period, payable_at"
)
RUN_COLUMNS = (
    "period, status, cutoff, started_at, referrer_count, referral_count, total_cents,"
    " report_key, completed_at"
)
FULL_SCAN = (
    "SELECT created_at / 86400000000, reward_cents, status, count(*) FROM referrals"
    " WHERE created_at >= {since} GROUP BY 1, 2, 3"
)


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def time_prefix(millis: int) -> str:
    """A ULID's first 10 characters: its 48 bits of milliseconds."""
    chars = []
    for _ in range(10):
        millis, digit = divmod(millis, 32)
        chars.append(CROCKFORD[digit])
    return "".join(reversed(chars))


def tier_cents(ordinal: int) -> int:
    return 2500 if ordinal >= 25 else 2000 if ordinal >= 10 else 1500 if ordinal >= 5 else 1000


def months_back(now: datetime, count: int) -> list[datetime]:
    """The first instants of the `count` months before this one, oldest first."""
    firsts = [datetime(now.year, now.month, 1, tzinfo=UTC)]
    for _ in range(count):
        last = firsts[-1] - timedelta(days=1)
        firsts.append(datetime(last.year, last.month, 1, tzinfo=UTC))
    return list(reversed(firsts))


class Seed:
    def __init__(self, referrals: int, referrers: int, months: int, now: datetime) -> None:
        self.referrals, self.referrers, self.months, self.now = referrals, referrers, months, now
        self.start = now - timedelta(days=365) * months / 12
        self.this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
        self.paid: dict[str, list[int]] = {}  # period: [referrals, cents]

    def referrer_rows(self) -> Iterator[tuple[object, ...]]:
        count = self.referrals // self.referrers
        for n in range(self.referrers):
            yield f"r{n:06d}", f"C{n:06d}", f"C{n:06d}", count, micros(self.start)

    def referral_rows(self) -> Iterator[tuple[object, ...]]:
        step = (self.now - self.start) / self.referrals
        for i in range(self.referrals):
            created = self.start + step * i
            at = micros(created)
            ordinal = i // self.referrers + 1
            cents = tier_cents(ordinal)
            period = None
            if i % 200 == 0:
                status = "held"
            elif created < self.this_month:
                status, period = "paid", f"{created.year:04d}-{created.month:02d}"
                totals = self.paid.setdefault(period, [0, 0])
                totals[0] += 1
                totals[1] += cents
            else:
                status = "pending"
            ulid = time_prefix(at // 1000) + f"{i:016d}"
            n = i % self.referrers
            yield (
                ulid,
                f"u{i:08d}",
                f"r{n:06d}",
                f"C{n:06d}",
                ordinal,
                cents,
                status,
                at,
                period,
                at,
            )

    def run_rows(self) -> Iterator[tuple[object, ...]]:
        for first in months_back(self.now, self.months + 1)[:-1]:
            period = f"{first.year:04d}-{first.month:02d}"
            if period not in self.paid:
                continue
            cutoff = micros((first + timedelta(days=32)).replace(day=1))
            count, cents = self.paid[period]
            report = f"payouts/{period}/report.csv"
            yield period, "completed", cutoff, cutoff, 1, count, cents, report, cutoff


def seed_sqlite(path: Path, seed: Seed) -> str:
    import sqlite3

    from referrals.bootstrap import build_store

    build_store(f"sqlite:///{path}", migrate=True).dispose()  # type: ignore[attr-defined]
    db = sqlite3.connect(path)
    with db:
        for table, columns, rows in (
            ("referrers", REFERRER_COLUMNS, seed.referrer_rows()),
            ("referrals", REFERRAL_COLUMNS, seed.referral_rows()),
            ("payout_runs", RUN_COLUMNS, seed.run_rows()),
        ):
            marks = ", ".join("?" for _ in columns.split(","))
            db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    db.execute("ANALYZE")
    db.close()
    return f"sqlite:///{path}"


def seed_postgresql(name: str, seed: Seed) -> str:
    import psycopg

    from referrals.bootstrap import build_store

    admin_sql(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    build_store(url, migrate=True).dispose()  # type: ignore[attr-defined]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
        for table, columns, rows in (
            ("referrers", REFERRER_COLUMNS, seed.referrer_rows()),
            ("referrals", REFERRAL_COLUMNS, seed.referral_rows()),
            ("payout_runs", RUN_COLUMNS, seed.run_rows()),
        ):
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


@contextmanager
def seeded(database: str, seed: Seed, tmp: Path) -> Iterator[str]:
    if database == "sqlite":
        yield seed_sqlite(tmp / "dashboard.db", seed)
        return
    name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    try:
        yield seed_postgresql(name, seed)
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def median_s(work: Callable[[], object], repeat: int) -> float:
    work()  # warm: connections, statement caches, the pages the query reads
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(url: str, tmp: Path, repeat: int) -> dict[str, float]:
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from referrals.api import dashboard_routes
    from referrals.api.app import create_app
    from referrals.bootstrap import build
    from referrals.config import Settings
    from referrals.domain.model import Role
    from referrals.services.dashboard_overview import overview
    from referrals.services.keys import create_key

    svc = build(Settings(database_url=url, reports_url=str(tmp / "reports"), scheduler=False))
    key, _ = create_key(svc.store, svc.clock, Role.ADMIN)
    client = TestClient(create_app(svc))
    assert client.post("/dashboard/login", data={"key": key}).status_code == 200
    data = overview(svc.store, svc.clock, svc.rules.current(svc.clock).tiers)
    since = micros(data.since)

    def page() -> None:
        response = client.get("/dashboard")
        assert response.status_code == 200 and "Signups per day" in response.text

    def full_scan() -> None:
        with svc.store.read() as uow:
            uow.connection.execute(text(FULL_SCAN.format(since=since))).all()  # type: ignore[attr-defined]

    result = {
        "window_signups": data.signups,
        "unsettled_entries": sum(state.count for state in data.unsettled),
        "floor_healthz_s": median_s(lambda: client.get("/healthz"), repeat * 10),
        "data_s": median_s(
            lambda: overview(svc.store, svc.clock, svc.rules.current(svc.clock).tiers), repeat
        ),
    }
    dashboard_routes.OVERVIEW_TTL_S = 0.0
    result["page_s"] = median_s(page, repeat)
    dashboard_routes.OVERVIEW_TTL_S = 3600.0
    result["cached_page_s"] = median_s(page, repeat)
    result["full_scan_s"] = median_s(full_scan, repeat)
    svc.store.dispose()  # type: ignore[attr-defined]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--referrers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    seed = Seed(args.referrals, args.referrers, args.months, datetime.now(UTC))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with seeded(args.database, seed, Path(tmp)) as url:
            seeded_s = time.perf_counter() - start
            result = measure(url, Path(tmp), args.repeat)
    floor = result["floor_healthz_s"]
    row = {
        "database": args.database,
        "referrals": args.referrals,
        "months": args.months,
        "seed_s": round(seeded_s, 1),
        **{k: round(v, 5) if k.endswith("_s") else v for k, v in result.items()},
        **{
            f"{k[:-2]}_ratio": round(result[k] / floor, 1)
            for k in ("data_s", "page_s", "cached_page_s", "full_scan_s")
        },
    }
    print(json.dumps(row), flush=True)
    print()
    print(f"{args.database}, {args.referrals:,} referrals over {args.months} months:")
    print("| measurement | ms (median) | x floor |")
    print("|---|---:|---:|")
    print(f"| floor: `GET /healthz` | {floor * 1000:.2f} | 1 |")
    for key, label in (
        ("data_s", "overview data (3 stats queries + runs)"),
        ("page_s", "`GET /dashboard`, computed"),
        ("cached_page_s", "`GET /dashboard`, cached"),
        ("full_scan_s", "signups per day by a full scan (not used)"),
    ):
        print(f"| {label} | {result[key] * 1000:.2f} | {row[f'{key[:-2]}_ratio']} |")


if __name__ == "__main__":
    main()
