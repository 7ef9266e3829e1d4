"""Outbox delivery from several servers at once, each with several delivery threads, while
events keep coming: the way `referrals serve --workers N` behind a load balancer runs it.

Claims must never wait on each other (a deadlock cost PostgreSQL's 1 s deadlock timeout
and a failed dispatch, issue 27), every event must be delivered, and no event may be held
by two claimers at once. Each "server" is a store of its own (its own engine and pool)
on the one database, with the real `BackgroundWorker` delivery loop.
"""

import dataclasses
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import Services, build, build_store
from referrals.config import Settings
from referrals.domain.model import Event, new_id
from referrals.ports import Store
from referrals.worker import BackgroundWorker
from tests.postgresql import emptied_store

SERVERS = 2
CLAIMERS_PER_SERVER = 2
BATCHES = 200
EVENTS_PER_BATCH = 25


class HoldingNotifier:
    """Records every delivery, and any event found being delivered by another claimer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holding: dict[str, str] = {}
        self.deliveries: Counter[str] = Counter()
        self.overlaps: list[tuple[str, str, str]] = []

    def deliver(self, event: Event) -> None:
        me = threading.current_thread().name
        with self._lock:
            if event.id in self._holding:
                self.overlaps.append((event.id, self._holding[event.id], me))
            self._holding[event.id] = me
            self.deliveries[event.id] += 1
        with self._lock:
            self._holding.pop(event.id, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        sqlite = f"sqlite:///{tmp_path}/claimers.db"
        build_store(sqlite, migrate=True).dispose()
        return sqlite
    url: str = request.getfixturevalue("postgresql_database")
    with emptied_store(url):  # empty tables, as every contract test starts with
        return url


@pytest.fixture
def notifier() -> HoldingNotifier:
    return HoldingNotifier()


@pytest.fixture
def servers(
    database_url: str, tmp_path: Path, notifier: HoldingNotifier
) -> Iterator[list[Services]]:
    """Each a store of its own on the one database: its own engine, pool and connections."""
    settings = Settings(database_url=database_url, reports_url=str(tmp_path), scheduler=False)
    built = [dataclasses.replace(build(settings), notifier=notifier) for _ in range(SERVERS)]
    yield built
    for svc in built:
        assert isinstance(svc.store, SqlStore)
        svc.store.dispose()


def add_events(store: Store) -> list[str]:
    """A stream of events, a few at a time, as signups commit them, due at times out of
    the order of their ids, as retried events are: a claim (by due time) and the
    marking of another claimer's deliveries (by id) lock rows in different orders."""
    ids = []
    due = random.Random(27)
    for _ in range(BATCHES):
        with store.unit_of_work() as uow:
            for _ in range(EVENTS_PER_BATCH):
                now = datetime.now(UTC)
                at = now - timedelta(milliseconds=due.randrange(1000))
                event = Event(new_id(now), "referral.created", {"n": 1}, now, next_attempt_at=at)
                uow.outbox.add(event)
                ids.append(event.id)
            uow.commit()
    return ids


def backlog(store: Store) -> int:
    with store.read() as uow:
        return uow.outbox.backlog()


def test_claimers_on_several_servers_deliver_every_event_once_without_waiting_on_each_other(
    servers: list[Services], notifier: HoldingNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    workers = [
        BackgroundWorker(svc, dispatch_every=0.005)
        for svc in servers
        for _ in range(CLAIMERS_PER_SERVER)
    ]
    for worker in workers:
        worker.start()
    try:
        added = add_events(servers[0].store)
        # A bound for a stuck delivery, not a measurement: a healthy run drains in a second.
        deadline = time.monotonic() + 60
        while backlog(servers[1].store) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()

    logged = [caplog.handler.format(r) for r in caplog.records if r.name.startswith("referrals")]
    assert logged == []  # no "outbox dispatch failed ... DeadlockDetected", nor anything else
    assert notifier.overlaps == []
    # Every claim outlives the test (services.outbox.CLAIM, 60 s): an event delivered twice
    # would have been claimed by two live claimers.
    assert set(notifier.deliveries) == set(added)
    assert max(notifier.deliveries.values()) == 1
    assert backlog(servers[0].store) == 0  # and each marked delivered
