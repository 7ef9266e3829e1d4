"""SQLite's writers take turns on the writer engine's one connection: a unit of work
waits in the pool while another writes, and goes on as soon as it ends."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.model import Referrer

NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    built = build_store(f"sqlite:///{tmp_path}/writers.db", migrate=True)
    assert isinstance(built, SqlStore)
    yield built
    built.dispose()


def referrer(user_id: str) -> Referrer:
    return Referrer(user_id, f"C-{user_id}", None, referral_count=0, created_at=NOW)


def test_a_writer_waits_for_the_one_before_it_and_follows_at_once(store: SqlStore) -> None:
    inside = threading.Event()
    order: list[str] = []
    connections: list[int] = []

    def first() -> None:
        with store.unit_of_work() as uow:
            uow.referrers.add(referrer("alice"))
            inside.set()
            time.sleep(0.2)  # the second writer is waiting meanwhile...
            connections.append(store.writer.pool.checkedout())  # type: ignore[attr-defined]
            order.append("first commits")
            uow.commit()

    def second() -> None:
        inside.wait(10)
        with store.unit_of_work() as uow:
            order.append("second begins")
            uow.referrers.add(referrer("bob"))
            uow.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # Woken by the pool as the connection comes back, not by a busy handler's next poll.
    assert time.monotonic() - started < 1.0
    assert order == ["first commits", "second begins"]
    assert connections == [1]  # ...for the connection, not in SQLite's busy handler
    with store.read() as uow:
        assert uow.referrers.get("alice") is not None and uow.referrers.get("bob") is not None


def test_readers_do_not_wait_for_a_writer(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        with store.read() as reader:  # WAL: the last committed state, at once
            assert reader.referrers.get("alice") is None
        uow.commit()
