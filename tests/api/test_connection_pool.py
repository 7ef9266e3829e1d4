"""A server on PostgreSQL under a steady load keeps its connections: more requests at
once than its pool holds, and outbox delivery beside them, open no connection past
`pool_size` (each one opened and closed again was a new PostgreSQL session, issue 27)."""

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from referrals.adapters.sql.store import SqlStore
from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.services.keys import create_first_admin_key
from referrals.services.referrers import enroll
from tests.postgresql import migrated_database

POOL_SIZE = 3
CLIENTS = 4 * POOL_SIZE  # requests at once: more than the pool has connections
ROUNDS = 3


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with migrated_database("connection_pool") as url:
        settings = Settings(
            database_url=url, reports_url=str(tmp_path), pool_size=POOL_SIZE, scheduler=False
        )
        svc = build(settings)
        assert isinstance(svc.store, SqlStore)
        try:
            yield svc
        finally:
            svc.store.dispose()


class Connects:
    """Counts the connections an engine opens."""

    def __init__(self, store: SqlStore) -> None:
        self.count = 0
        self._lock = threading.Lock()
        event.listen(store.writer, "connect", self._connected)

    def _connected(self, _dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            self.count += 1


def delivered_all(services: Services) -> bool:
    deadline = time.monotonic() + 30  # a bound for a stuck worker, not a measurement
    while time.monotonic() < deadline:
        with services.store.read() as uow:
            if uow.outbox.backlog() == 0:
                return True
        time.sleep(0.05)
    return False


def test_a_steady_load_with_outbox_delivery_opens_no_connection_past_the_pool(
    services: Services,
) -> None:
    assert isinstance(services.store, SqlStore)
    key = create_first_admin_key(services.store, services.clock)
    code = enroll(services.store, services.clock, "alice").referrer.code
    headers = {"Authorization": f"Bearer {key}"}
    connects = Connects(services.store)

    # background: the outbox worker delivers the signups' events meanwhile, on a
    # connection of the same pool.
    with TestClient(create_app(services, background=True)) as client:

        def signup(n: int) -> int:
            body = {"user_id": f"u{n}", "referral_code": code}
            return client.post("/v1/signups", json=body, headers=headers).status_code

        def health(_: int) -> int:
            return client.get("/healthz").status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            for round_no in range(ROUNDS):
                first = round_no * 100
                signups = list(pool.map(signup, range(first, first + 100)))
                checks = list(pool.map(health, range(100)))
                assert signups == [201] * 100
                assert checks == [200] * 100
        assert delivered_all(services)
    assert 1 <= connects.count <= POOL_SIZE
