"""How many requests a server process works on at once: on PostgreSQL, its pool's size."""

from pathlib import Path

from anyio import to_thread
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from tests.postgresql import services_on


def _request_threads(client: TestClient) -> float:
    """The thread limit of the event loop the client's requests run on."""
    assert client.portal is not None
    return client.portal.call(to_thread.current_default_thread_limiter).total_tokens


def test_on_postgresql_requests_get_as_many_threads_as_the_pool_has_connections(
    tmp_path: Path,
) -> None:
    with (
        services_on("request_threads", str(tmp_path), pool_size=3) as svc,
        TestClient(create_app(svc)) as client,
    ):
        assert client.get("/healthz").status_code == 200
        assert _request_threads(client) == 3


def test_on_sqlite_requests_keep_the_default_thread_pool(services: Services) -> None:
    # SQLite's store sets no bound: its writers take turns on one connection, and its
    # readers never wait.
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 200
        assert _request_threads(client) == 40
