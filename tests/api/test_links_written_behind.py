"""Tracked links whose clicks are written behind the redirect (`referrals serve`'s app):
the redirect hands its click to the app's click writer, a signup finds the click once it
is written, and the app's start and stop run the writer (the stop writes what is left).
"""

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.click_writer import ClickWriter
from tests.api.common import Headers

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}
LONG = 60.0  # no test waits for the interval: it flushes, or stops the writer


def set_up(client: TestClient, admin: Headers) -> None:
    body = {"landing_url": "https://example.com/", "attribution_window_days": 7}
    assert client.patch("/v1/programs/default", json=body, headers=admin).status_code == 200
    enrolled = client.post(
        "/v1/referrers", json={"user_id": "alice", "code": "ALICE"}, headers=admin
    )
    assert enrolled.status_code == 201


def click(client: TestClient, code: str = "ALICE") -> str:
    answer = client.get(f"/l/{code}", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 302
    [click_id] = parse_qs(urlsplit(answer.headers["location"]).query)["click_id"]
    return click_id


def stored(services: Services, click_id: str) -> bool:
    with services.store.read() as uow:
        return uow.clicks.get(click_id) is not None


def sign_up(client: TestClient, ingest: Headers, user: str, **body: Any) -> Any:
    return client.post("/v1/signups", json={"user_id": user, **body}, headers=ingest)


def test_a_signup_finds_the_click_once_the_writer_has_written_it(
    services: Services, admin: Headers, ingest: Headers
) -> None:
    app = create_app(services)
    writer = ClickWriter(services.store, every=LONG)
    writer.start()
    app.state.click_writer = writer
    client = TestClient(app)
    try:
        set_up(client, admin)
        click_id = click(client)
        assert not stored(services, click_id)  # handed to the writer, not written yet
        # Sooner than a person could sign up: the click is not found, the code still counts.
        early = sign_up(client, ingest, "bob", click_id=click_id)
        assert early.status_code == 404 and early.json()["code"] == "click_not_found"
        by_code = sign_up(client, ingest, "bob", referral_code="ALICE", click_id=click_id)
        assert by_code.status_code == 201
        assert by_code.json()["referral"]["click_id"] is None
        assert writer.flush() == 1
        later = sign_up(client, ingest, "carol", click_id=click_id)
        assert later.status_code == 201, later.text
        assert later.json()["referral"]["click_id"] == click_id
    finally:
        writer.stop()


def served(services: Services, **settings: Any) -> Services:
    """`services` as `referrals serve` runs them (here with no payout schedule)."""
    return replace(services, settings=services.settings.model_copy(update=settings))


def test_the_apps_start_and_stop_run_the_writer(services: Services, admin: Headers) -> None:
    app = create_app(served(services, scheduler=False), background=True)
    with TestClient(app) as client:  # the lifespan: the worker and the click writer
        assert isinstance(app.state.click_writer, ClickWriter)
        set_up(client, admin)
        clicks = [click(client) for _ in range(3)]
    assert app.state.click_writer is None  # stopped, after writing what it held
    assert all(stored(services, click_id) for click_id in clicks)


def test_with_write_behind_off_the_redirect_writes_its_click(
    services: Services, admin: Headers
) -> None:
    app = create_app(served(services, scheduler=False, click_write_behind=False), background=True)
    with TestClient(app) as client:
        assert getattr(app.state, "click_writer", None) is None
        set_up(client, admin)
        assert stored(services, click(client))
