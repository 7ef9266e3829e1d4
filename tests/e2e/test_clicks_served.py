"""Tracked-link clicks under a real `referrals serve`, written behind the redirect: a
click is in the database within moments (a signup then finds it by its id), and a
clean stop (SIGTERM) writes every click it still held. On SQLite and PostgreSQL."""

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    if request.param == "sqlite":
        yield tmp_path / "referrals.db"
        return
    with locale_database("referrals_clicks") as url:
        yield url


def url_of(database: Path | str) -> str:
    return database if isinstance(database, str) else f"sqlite:///{database}"


def clicks_stored(database: Path | str) -> int:
    engine = create_engine(url_of(database))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM clicks")).scalar_one())
    finally:
        engine.dispose()


def follow(server: ServerProcess, code: str, visitor: int = 1) -> str:
    # Each visitor from its own address (uvicorn trusts X-Forwarded-For from 127.0.0.1),
    # under the click limit per address.
    headers = BROWSER | {"X-Forwarded-For": f"198.51.100.{visitor}"}
    answer = httpx.get(f"{server.base_url}/l/{code}", headers=headers, timeout=10)
    assert answer.status_code == 302, answer.text
    [click_id] = parse_qs(urlsplit(answer.headers["location"]).query)["click_id"]
    return click_id


def test_a_served_click_is_written_soon_and_a_stop_writes_the_rest(
    servers: ServerFactory, database: Path | str
) -> None:
    server = servers.start(database)
    assert server.printed_key is not None
    admin = server.client(server.printed_key)
    landing = admin.patch("/v1/programs/default", json={"landing_url": "https://example.com/"})
    assert landing.status_code == 200, landing.text
    assert (
        admin.post("/v1/referrers", json={"user_id": "alice", "code": "ALICE"}).status_code == 201
    )

    click_id = follow(server, "ALICE")
    deadline = time.monotonic() + 5  # written within a flush interval (0.1 s) or so
    while clicks_stored(database) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    signup = admin.post("/v1/signups", json={"user_id": "bob", "click_id": click_id})
    assert signup.status_code == 201, f"{signup.text}\n{server.output()}"
    assert signup.json()["referral"]["click_id"] == click_id

    for visitor in range(2, 42):
        follow(server, "ALICE", visitor)
    server.stop()  # SIGTERM: uvicorn's shutdown stops the writer, which writes its buffer
    assert "Application shutdown complete" in server.output()
    assert clicks_stored(database) == 41
