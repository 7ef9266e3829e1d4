"""The dashboard's queries read index ranges, never every referral: their plans, checked.

Each test records the statements the SQL stats adapter really sends (an engine
event), then asks the database how it runs them: SQLite's EXPLAIN QUERY PLAN, and
PostgreSQL's EXPLAIN with sequential scans switched off, so the plan shows whether
a bounded index path exists at all. The checkers are tried on an unbounded query
first, so these tests can fail.
"""

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event

from referrals.adapters.sql.store import SqlStore
from referrals.adapters.times import to_micros
from referrals.bootstrap import build_store
from referrals.domain.model import first_id_at
from tests.postgresql import locale_database

NOW = datetime(2026, 11, 25, tzinfo=UTC)
SINCE = NOW - timedelta(days=29)
REFERRALS = 3_000
REFERRERS = 100
UNBOUNDED = "SELECT referrer_id, count(*) FROM referrals WHERE created_at >= 0 GROUP BY referrer_id"


def referrer_rows() -> Iterator[tuple[object, ...]]:
    for n in range(REFERRERS):
        yield f"r{n:03d}", f"C{n:03d}", f"C{n:03d}", REFERRALS // REFERRERS, 0


def referral_rows() -> Iterator[tuple[object, ...]]:
    """A year of referrals, each id minted at its created_at; the last month unpaid."""
    step = timedelta(days=365) / REFERRALS
    for i in range(REFERRALS):
        created = NOW - timedelta(days=365) + step * i
        status = "paid" if created < NOW - timedelta(days=25) else "pending"
        status = "held" if i % 97 == 0 else status
        ulid = first_id_at(created)[:10] + f"{i:016d}"
        micros = to_micros(created)
        yield ulid, f"u{i}", f"r{i % REFERRERS:03d}", "C", i, 1000, status, micros, micros


REFERRER_INSERT = (
    "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
    " VALUES (%s, %s, %s, %s, %s)"
)
REFERRAL_INSERT = (
    "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal, reward_cents, status,"
    " created_at, payable_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


# An overview of every program, and of one.
PROGRAMS = pytest.mark.parametrize("program", [None, "default"])


def dashboard_statements(store: SqlStore, program: str | None) -> list[tuple[str, Any]]:
    """The statements (and parameters) the stats adapter sends for one overview."""
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    engine: Engine = store.reader
    event.listen(engine, "before_cursor_execute", record)
    try:
        with store.read() as uow:
            assert uow.stats.signups(SINCE, program=program)
            assert uow.stats.top_referrers(SINCE, 10, program=program)
            assert uow.stats.unsettled(program=program)
            assert uow.stats.referral_days(program or "default", SINCE, NOW)  # the funnel's
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(sent) == 4
    return sent


# SQLite


def sqlite_full_scans(db: sqlite3.Connection, statement: str, parameters: Any) -> list[str]:
    """The plan steps that read a whole table of referrals or entries (or a whole index)."""
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert plan, statement
    return [step for step in plan if step.startswith(("SCAN referrals", "SCAN rewards"))]


@pytest.fixture(params=["no statistics", "analyzed"])
def sqlite_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    path = tmp_path / "plans.db"
    store = build_store(f"sqlite:///{path}", migrate=True)
    assert isinstance(store, SqlStore)
    with sqlite3.connect(path) as db:
        db.executemany(REFERRER_INSERT.replace("%s", "?"), referrer_rows())
        db.executemany(REFERRAL_INSERT.replace("%s", "?"), referral_rows())
        if request.param == "analyzed":
            db.execute("ANALYZE")
    yield store
    store.dispose()


def test_the_sqlite_checker_sees_a_full_scan(sqlite_store: SqlStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "plans.db") as db:
        assert sqlite_full_scans(db, UNBOUNDED, ()) != []


@PROGRAMS
def test_sqlite_runs_the_dashboard_queries_on_index_ranges(
    sqlite_store: SqlStore, tmp_path: Path, program: str | None
) -> None:
    statements = dashboard_statements(sqlite_store, program)
    with sqlite3.connect(tmp_path / "plans.db") as db:
        for statement, parameters in statements:
            assert sqlite_full_scans(db, statement, parameters) == [], statement
            plan = " | ".join(
                r[3] for r in db.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            # Referrals are read by a range of ids or of one unsettled state.
            assert "(id>? AND id<?)" in plan or "ix_referrals_status_id (status=?)" in plan


# PostgreSQL


def pg_unbounded_reads(conn: psycopg.Connection[Any], statement: str, parameters: Any) -> list[str]:
    """The plan nodes that read referrals or entries without an index condition."""
    with conn.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
        row = cursor.fetchone()
    assert row is not None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        relation = node.get("Relation Name")
        kind = node["Node Type"]
        if relation in ("referrals", "rewards"):
            bounded = "Index Cond" in node or kind == "Bitmap Heap Scan"
            if kind == "Seq Scan" or not bounded:
                found.append(f"{kind} on {relation} ({node.get('Index Name', 'no index')})")
        if kind == "Bitmap Index Scan" and "Index Cond" not in node:
            found.append(f"{kind} of {node['Index Name']} without a condition")
        for child in node.get("Plans", []):
            walk(child)

    walk(document[0]["Plan"])
    return found


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with locale_database("referrals_plans") as url:
        build_store(url, migrate=True).dispose()
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            with conn.cursor() as cursor:
                cursor.executemany(REFERRER_INSERT, list(referrer_rows()))
                cursor.executemany(REFERRAL_INSERT, list(referral_rows()))
            conn.execute("VACUUM ANALYZE")
        yield url


@pytest.fixture
def pg_explain(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url.replace("+psycopg", "")) as conn:
        # Off, a sequential scan is chosen only if no index path exists.
        conn.execute("SET enable_seqscan = off")
        yield conn


def test_the_postgresql_checker_sees_a_full_scan(pg_explain: psycopg.Connection[Any]) -> None:
    assert pg_unbounded_reads(pg_explain, UNBOUNDED, None) != []


@PROGRAMS
def test_postgresql_runs_the_dashboard_queries_on_index_ranges(
    pg_url: str, pg_explain: psycopg.Connection[Any], program: str | None
) -> None:
    store = build_store(pg_url)
    assert isinstance(store, SqlStore)
    try:
        statements = dashboard_statements(store, program)
    finally:
        store.dispose()
    for statement, parameters in statements:
        assert pg_unbounded_reads(pg_explain, statement, parameters) == [], statement
