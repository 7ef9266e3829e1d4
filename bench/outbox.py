"""Outbox delivery on SQLite or PostgreSQL: this process's CPU per event, against a floor.

The worker inside `referrals serve` delivers in rounds (`services.outbox.dispatch`):
claim the due events, deliver each, mark the delivered ones, each step its own
transaction. While signups come in, a round is a tenth of a second's events (about
10-50); idle, up to 100. Measured: `dispatch` through the store, with a notifier
that does nothing (delivery itself is the notifier's cost, not the store's). Floor:
the same two transactions' SQL written by hand on the bare driver (sqlite3,
psycopg), reading the claimed rows as plain tuples. The ratio is the price of the
store's layers per event; the database server's own CPU is in neither figure.

    python -m bench.outbox [--database sqlite|postgresql] [--events 3000]
                           [--per-round 13,100]
"""

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.signup_http import database
from referrals.adapters.clock import SystemClock
from referrals.bootstrap import build_store
from referrals.domain.model import Event, new_id
from referrals.ports import Store
from referrals.services.outbox import CLAIM, dispatch

CLAIM_SQL = (
    "UPDATE outbox SET next_attempt_at = {p} WHERE id IN (SELECT id FROM outbox"
    " WHERE status = 'pending' AND next_attempt_at <= {p}"
    " ORDER BY next_attempt_at, id LIMIT {p}) AND status = 'pending' AND next_attempt_at <= {p}"
    " RETURNING id, type, payload, created_at, status, attempts, next_attempt_at, last_error"
)
MARK_SQL = (
    "UPDATE outbox SET status = 'delivered', attempts = attempts + 1,"
    " next_attempt_at = NULL, last_error = NULL WHERE id IN ({ids})"
)


class NoDelivery:
    def deliver(self, event: Event) -> None:
        return None


def add_events(store: Store, count: int) -> None:
    now = datetime.now(UTC)
    with store.unit_of_work() as uow:
        for n in range(count):
            payload = {
                "referral_id": new_id(datetime.now(UTC)),
                "referrer_id": "r00001",
                "reward_cents": 1000,
            }
            uow.outbox.add(
                Event(
                    new_id(datetime.now(UTC)),
                    "referral.created",
                    payload | {"ordinal": n},
                    now,
                    next_attempt_at=now,
                )
            )
        uow.commit()


def cpu_per_event(count: int, deliver_all: Callable[[], int]) -> tuple[float, float]:
    """CPU and wall microseconds per event of `deliver_all`, which answers how many it did."""
    cpu, wall = time.process_time(), time.perf_counter()
    done = deliver_all()
    assert done == count, f"delivered {done} of {count}"
    return (
        (time.process_time() - cpu) / count * 1e6,
        (time.perf_counter() - wall) / count * 1e6,
    )


def by_dispatch(store: Store, per_round: int) -> Callable[[], int]:
    def deliver_all() -> int:
        done = 0
        while result := dispatch(store, NoDelivery(), SystemClock(), limit=per_round).delivered:
            done += result
        return done

    return deliver_all


def by_driver(connect: Callable[[], Any], mark: str, per_round: int) -> Callable[[], int]:
    """The floor: a claim and a mark per round, by hand. `mark` is the parameter style."""

    def deliver_all() -> int:
        conn, done = connect(), 0
        try:
            while True:
                now = int(time.time() * 1e6)
                until = now + int(CLAIM.total_seconds() * 1e6)
                claimed = conn.execute(CLAIM_SQL.format(p=mark), (until, now, per_round, now))
                ids = [row[0] for row in claimed.fetchall()]
                conn.commit()
                if not ids:
                    return done
                conn.execute(MARK_SQL.format(ids=", ".join([mark] * len(ids))), ids)
                conn.commit()
                done += len(ids)
        finally:
            conn.close()

    return deliver_all


def bare_driver(url: str) -> tuple[Callable[[], Any], str]:
    """A connection on the bare driver to the store's database, and its parameter mark."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")

        def sqlite() -> sqlite3.Connection:
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA synchronous=FULL")  # as the store: WAL (set by it), FULL
            return conn

        return sqlite, "?"
    import psycopg

    dsn = url.replace("+psycopg", "")
    return lambda: psycopg.connect(dsn), "%s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--per-round", default="13,100", help="events claimed per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        connect, mark = bare_driver(url)
        store = build_store(url, migrate=True)
        add_events(store, 200)  # warm up: connections, statements, caches
        by_dispatch(store, 100)()
        for per_round in (int(size) for size in args.per_round.split(",")):
            add_events(store, args.events)
            floor_cpu, floor_wall = cpu_per_event(args.events, by_driver(connect, mark, per_round))
            add_events(store, args.events)
            cpu, wall = cpu_per_event(args.events, by_dispatch(store, per_round))
            row = {
                "database": args.database,
                "events": args.events,
                "per_round": per_round,
                "floor_cpu_us": round(floor_cpu, 1),
                "dispatch_cpu_us": round(cpu, 1),
                "ratio": round(cpu / floor_cpu, 2),
                "floor_wall_us": round(floor_wall, 1),
                "dispatch_wall_us": round(wall, 1),
            }
            print(json.dumps(row), flush=True)
        store.dispose()


if __name__ == "__main__":
    main()
