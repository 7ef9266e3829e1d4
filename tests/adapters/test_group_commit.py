"""Group commit on SQLite: writers share a transaction without sharing their failures."""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from referrals.adapters.sql.group_commit import BatchFailed, GroupCommit
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.errors import Conflict
from referrals.domain.model import Referral, ReferralStatus, Referrer

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    built = build_store(f"sqlite:///{tmp_path}/group.db", migrate=True)
    assert isinstance(built, SqlStore)
    yield built
    built.dispose()


def referrer(user_id: str, code: str) -> Referrer:
    return Referrer(user_id, code, None, referral_count=0, created_at=NOW)


def commits(store: SqlStore) -> list[int]:
    """Counts the COMMITs that reach SQLite."""
    seen: list[int] = []
    event.listen(store.writer, "commit", lambda _conn: seen.append(1))
    return seen


def group(store: SqlStore) -> GroupCommit:
    assert store._group is not None
    return store._group


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def user_ids(store: SqlStore) -> set[str]:
    with store.read() as uow:
        return {user for user in ("a", "b", "c") if uow.referrers.get(user) is not None}


class Writer(threading.Thread):
    """Runs `work` in a unit of work, committing it; holds it open until released."""

    def __init__(self, store: SqlStore, work: Callable[..., None]) -> None:
        super().__init__(daemon=True)
        self.store, self.work = store, work
        self.inside, self.release = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.store.unit_of_work() as uow:
                self.work(uow)
                self.inside.set()
                self.release.wait(10)
                uow.commit()
        except BaseException as error:
            self.error = error
        finally:
            self.inside.set()


def follow(store: SqlStore, first: Writer, second: Writer) -> None:
    """`first` commits while `second` is queued behind it, so `second` commits for both."""
    first.start()
    first.inside.wait(10)
    second.start()
    wait_until(lambda: group(store)._queued == 1)
    first.release.set()
    second.release.set()
    first.join(10)
    second.join(10)


def test_queued_writers_share_one_commit(store: SqlStore) -> None:
    seen = commits(store)
    first = Writer(store, lambda uow: uow.referrers.add(referrer("a", "CODEA")))
    second = Writer(store, lambda uow: uow.referrers.add(referrer("b", "CODEB")))
    follow(store, first, second)
    assert (first.error, second.error) == (None, None)
    assert user_ids(store) == {"a", "b"}
    assert len(seen) == 1


def test_a_failing_writer_keeps_the_work_of_the_batch(store: SqlStore) -> None:
    seen = commits(store)
    first = Writer(store, lambda uow: uow.referrers.add(referrer("a", "CODEA")))
    second = Writer(store, lambda uow: uow.referrers.add(referrer("b", "CODEA")))  # code taken
    follow(store, first, second)
    assert first.error is None
    assert isinstance(second.error, Conflict)
    assert user_ids(store) == {"a"}
    assert len(seen) == 1


def test_a_writer_that_does_not_commit_leaves_nothing(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("a", "CODEA"))
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("b", "CODEB"))
        uow.commit()
    assert user_ids(store) == {"b"}


def test_a_failed_commit_fails_every_writer_of_the_batch(store: SqlStore) -> None:
    def orphan(uow: object) -> None:
        # Deferred foreign keys are checked at COMMIT: the shared COMMIT fails.
        uow._tx.conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # type: ignore[attr-defined]
        orphaned = Referral(
            id="01J0000000000000000000000A",
            referee_id="x",
            referrer_id="nobody",
            code="CODEZ",
            email=None,
            ordinal=1,
            reward_cents=1000,
            status=ReferralStatus.PENDING,
            created_at=NOW,
        )
        uow.referrals.add(orphaned)  # type: ignore[attr-defined]

    first = Writer(store, orphan)
    second = Writer(store, lambda uow: uow.referrers.add(referrer("b", "CODEB")))
    follow(store, first, second)
    assert isinstance(first.error, BatchFailed)
    assert isinstance(second.error, BatchFailed)
    assert user_ids(store) == set()
    with store.unit_of_work() as uow:  # the next writer starts on a sound connection
        uow.referrers.add(referrer("c", "CODEC"))
        uow.commit()
    assert user_ids(store) == {"c"}


def test_a_nested_unit_of_work_is_refused_not_deadlocked(store: SqlStore) -> None:
    with store.unit_of_work() as outer:
        with pytest.raises(RuntimeError, match="already open"), store.unit_of_work():
            pass
        outer.referrers.add(referrer("a", "CODEA"))
        outer.commit()
    assert user_ids(store) == {"a"}


def test_many_concurrent_writers_all_land(store: SqlStore) -> None:
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        start.wait()
        try:
            for k in range(10):
                with store.unit_of_work() as uow:
                    uow.referrers.add(referrer(f"u{n}-{k}", f"C{n:02d}X{k:02d}"))
                    uow.commit()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with store.read() as uow:
        assert all(uow.referrers.get(f"u{n}-{k}") for n in range(16) for k in range(10))
