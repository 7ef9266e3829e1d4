"""A unit of work that ends without a commit leaves no transaction, and so no lock, behind.

On SQLite a transaction left open keeps `BEGIN IMMEDIATE`'s write lock from every
other writer, in this process or another, until its connection is disposed. These
tests look from another process, as an operator's `referrals keys create` or a
second server would.
"""

import itertools
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.errors import Conflict
from referrals.domain.model import Referrer
from tests.postgresql import migrated_database

NOW = datetime(2026, 11, 1, tzinfo=UTC)

# Reads a database path a line, answers whether BEGIN IMMEDIATE got the write lock
# at once (a timeout of 0: no waiting for a lock held elsewhere).
_PROBE = """
import sqlite3, sys
for path in sys.stdin:
    db = sqlite3.connect(path.strip(), timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        print("free", flush=True)
    except sqlite3.OperationalError as error:
        print(f"locked: {error}", flush=True)
    finally:
        db.close()
"""


class LockProbe:
    """Another process that tries to take a SQLite database's write lock, without waiting."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _PROBE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def write_lock(self, database: Path) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{database}\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip()

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


@pytest.fixture(scope="module")
def probe() -> Iterator[LockProbe]:
    started = LockProbe()
    yield started
    started.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "locks.db"


@pytest.fixture
def store(database: Path) -> Iterator[SqlStore]:
    built = build_store(f"sqlite:///{database}", migrate=True)
    assert isinstance(built, SqlStore)
    yield built
    built.dispose()


_ids = itertools.count()


def referrer() -> Referrer:
    n = next(_ids)
    return Referrer(f"user-{n}", f"CODE{n}", None, referral_count=0, created_at=NOW)


class Refused(Exception):
    """Raised inside a unit of work, as a use case's error would be."""


# Each ends a unit of work in its own way; it returns the referrer it committed, if any.
def commits(store: SqlStore) -> str | None:
    added = referrer()
    with store.unit_of_work() as uow:
        uow.referrers.add(added)
        uow.commit()
    return added.user_id


def returns_early(store: SqlStore) -> str | None:
    with store.unit_of_work() as uow:
        if uow.api_keys.count() >= 0:  # as create_first_admin_key does when a key exists
            return None
    raise AssertionError("unreachable")


def writes_then_returns(store: SqlStore) -> str | None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer())
    return None


def raises(store: SqlStore) -> str | None:
    try:
        with store.unit_of_work() as uow:
            uow.referrers.add(referrer())
            raise Refused
    except Refused:
        return None


def conflicts(store: SqlStore) -> str | None:
    """A statement that breaks a key fails inside the unit, which then ends."""
    added = referrer()
    try:
        with store.unit_of_work() as uow:
            uow.referrers.add(added)
            uow.referrers.add(added)
            uow.commit()
    except Conflict:
        return None
    raise AssertionError("the second insert should have conflicted")


ENDINGS: list[Callable[[SqlStore], str | None]] = [
    commits,
    returns_early,
    writes_then_returns,
    raises,
    conflicts,
]


def kept(store: SqlStore) -> set[str]:
    with store.reader.connect() as conn:
        return set(conn.execute(text("SELECT user_id FROM referrers")).scalars())


@pytest.mark.parametrize("ending", ENDINGS[1:], ids=lambda ending: ending.__name__)
def test_a_unit_that_does_not_commit_releases_the_write_lock(
    store: SqlStore, database: Path, probe: LockProbe, ending: Callable[[SqlStore], str | None]
) -> None:
    ending(store)
    assert probe.write_lock(database) == "free"


def test_the_first_admin_key_on_a_database_with_a_key_releases_the_write_lock(
    store: SqlStore, database: Path, probe: LockProbe
) -> None:
    """What `serve` does at every start after the first."""
    from referrals.adapters.clock import SystemClock
    from referrals.services.keys import create_first_admin_key

    assert create_first_admin_key(store, SystemClock()) is not None
    assert create_first_admin_key(store, SystemClock()) is None
    assert probe.write_lock(database) == "free"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    threads=st.lists(
        st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=6), min_size=1, max_size=4
    )
)
def test_any_mix_of_units_across_threads_leaves_the_write_lock_free(
    store: SqlStore,
    database: Path,
    probe: LockProbe,
    threads: list[list[Callable[[SqlStore], str | None]]],
) -> None:
    before = kept(store)
    committed: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(threads))

    def run(endings: list[Callable[[SqlStore], str | None]]) -> None:
        try:
            start.wait(10)
            for ending in endings:
                user = ending(store)
                if user is not None:
                    committed.append(user)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=run, args=(endings,)) for endings in threads]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not any(worker.is_alive() for worker in workers), "a unit of work hung"
    assert errors == []
    assert probe.write_lock(database) == "free"
    assert kept(store) - before == set(committed)  # what committed is there, nothing else


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    with migrated_database("uow_locks") as url:
        yield url


@pytest.mark.parametrize("ending", ENDINGS[1:], ids=lambda ending: ending.__name__)
def test_a_postgresql_unit_that_does_not_commit_leaves_no_transaction_open(
    postgresql_url: str, ending: Callable[[SqlStore], str | None]
) -> None:
    store = build_store(postgresql_url)
    assert isinstance(store, SqlStore)
    watcher = create_engine(postgresql_url)
    try:
        ending(store)
        with watcher.connect() as conn:
            open_transactions = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            ).scalar_one()
        assert open_transactions == 0
        assert commits(store) is not None  # and the next unit writes at once
    finally:
        watcher.dispose()
        store.dispose()
