"""Liveness (`/livez`: the process answers; `/healthz`: the database answers a read) and
readiness (`/readyz`: a write can begin and end now), and where the server's bare
address leads."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from anyio import to_thread
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from referrals.api import routes
from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.postgresql import migrated_database, services_on


def test_readyz_is_200_when_a_write_can_begin(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "READY_TIMEOUT_S", 0.3)


def test_readyz_is_503_while_another_process_holds_the_sqlite_write_lock(
    client: TestClient, tmp_path: Path, short_timeout: None
) -> None:
    holder = sqlite3.connect(tmp_path / "api.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert client.get("/healthz").status_code == 200  # reads go on under WAL
        refused = client.get("/readyz")
        assert refused.status_code == 503
        assert refused.json()["code"] == "unavailable"
        # The abandoned check still waits for the lock: the next is refused at once,
        # not queued behind it.
        started = time.monotonic()
        assert client.get("/readyz").status_code == 503
        assert time.monotonic() - started < 0.3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:  # the waiting check gets the lock, ends
        assert time.monotonic() < deadline, "readiness never came back"
        time.sleep(0.05)


def test_a_check_that_timed_out_before_it_ran_leaves_readiness_working(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stall longer than the timeout (a busy loop, a paused process) abandons the
    check before its thread runs it; that must not hold the next checks off."""
    monkeypatch.setattr(routes, "READY_TIMEOUT_S", 0)
    assert client.get("/readyz").status_code == 503
    monkeypatch.setattr(routes, "READY_TIMEOUT_S", 2.0)
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def read_only_postgresql(tmp_path: Path) -> Iterator[tuple[Services, str]]:
    """A migrated PostgreSQL database whose sessions may only read, as on a standby."""
    with migrated_database("readyz") as url:
        writable = build(Settings(database_url=url, reports_url=str(tmp_path)))
        plaintext, _ = create_key(writable.store, writable.clock, Role.ADMIN)
        writable.store.dispose()
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        admin.dispose()
        svc = build(Settings(database_url=url, reports_url=str(tmp_path)))
        yield svc, plaintext
        svc.store.dispose()


def test_readyz_is_503_on_a_postgresql_database_that_only_reads(
    read_only_postgresql: tuple[Services, str],
) -> None:
    svc, key = read_only_postgresql
    client = TestClient(create_app(svc))
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    # And a write says why, without a traceback's 500.
    refused = client.post(
        "/v1/referrers", json={"user_id": "alice"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 503
    assert refused.json()["code"] == "storage_unavailable"


def test_readyz_is_200_on_postgresql(tmp_path: Path) -> None:
    with services_on("readyz", str(tmp_path)) as svc:
        assert TestClient(create_app(svc)).get("/readyz").status_code == 200


def test_the_bare_address_leads_to_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"
    signed_out = client.get("/")  # followed: the dashboard sends a stranger to sign in
    assert signed_out.status_code == 200
    assert "/dashboard/login" in str(signed_out.url)


def test_livez_answers_200_without_a_key_while_the_database_is_gone(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/gone/api.db", secret_key="api-test-secret-" + "0" * 20
    )
    services = build(settings)
    (tmp_path / "gone").rmdir()  # SQLite cannot open the file: /healthz answers 503
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 503
        response = client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_livez_is_never_rate_limited(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/api.db",
        secret_key="api-test-secret-" + "0" * 20,
        public_rate_limit=2,
    )
    with TestClient(create_app(build(settings, migrate=True))) as client:
        answers = [client.get("/livez").status_code for _ in range(5)]
        assert client.get("/readyz").status_code == 200
        assert [client.get("/readyz").status_code for _ in range(3)][-1] == 429
    assert answers == [200] * 5


def test_on_postgresql_healthz_answers_while_every_request_thread_is_taken(
    tmp_path: Path,
) -> None:
    # Its round trip is made on the event loop (adapters.sql.probe): under full load a
    # request thread could wait seconds for the GIL, and a balancer's probe time out.
    with (
        services_on("healthz_loop", str(tmp_path), pool_size=1) as svc,
        TestClient(create_app(svc)) as client,
    ):
        assert client.portal is not None
        release = threading.Event()
        client.portal.start_task_soon(to_thread.run_sync, release.wait)  # the one thread
        asking = ThreadPoolExecutor(1)
        try:
            deadline = time.monotonic() + 5
            while client.portal.call(_threads_borrowed) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            # A check waiting for the taken thread would not answer in time.
            answered = asking.submit(client.get, "/healthz").result(timeout=3)
        finally:
            release.set()
            asking.shutdown()
        assert answered.status_code == 200
        assert answered.json() == {"status": "ok"}


async def _threads_borrowed() -> int:
    return to_thread.current_default_thread_limiter().borrowed_tokens
