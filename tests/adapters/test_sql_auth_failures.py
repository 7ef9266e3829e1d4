"""The failure counts' table on SQLite and PostgreSQL: rows of ended windows are deleted
by later counts, so it holds about the addresses failing now; and the migration that
makes it (0010) goes down and up."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from referrals.adapters.sql.auth_failures import PRUNE_BATCH
from referrals.adapters.sql.schema import auth_failures
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from tests.adapters.test_migrations import migrate
from tests.postgresql import migrated_database

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/limits.db"
        sql = build_store(url, migrate=True)
        assert isinstance(sql, SqlStore)
        yield sql
        sql.dispose()
        return
    with migrated_database("referrals_auth_failures") as url:
        sql = build_store(url)
        assert isinstance(sql, SqlStore)
        yield sql
        sql.dispose()


def rows(store: SqlStore) -> int:
    with store.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(auth_failures)).scalar_one())


def test_counts_delete_the_rows_of_ended_windows(store: SqlStore) -> None:
    failing = PRUNE_BATCH + 5
    for n in range(failing):
        store.count_failure(f"10.0.0.{n}", T0, WINDOW)
    assert rows(store) == failing
    later = T0 + WINDOW
    store.count_failure("203.0.113.7", later, WINDOW)
    assert rows(store) == failing + 1 - PRUNE_BATCH
    store.count_failure("203.0.113.7", later, WINDOW)
    assert rows(store) == 1


def test_the_migration_goes_down_and_up(store: SqlStore) -> None:
    store.count_failure("203.0.113.7", T0, WINDOW)
    migrate(store.writer, "0009", down=True)
    assert "auth_failures" not in inspect(store.writer).get_table_names()
    migrate(store.writer, "head")
    assert store.count_failure("203.0.113.7", T0, WINDOW) == (1, T0 + WINDOW)
