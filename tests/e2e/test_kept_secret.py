"""Without REFERRALS_SECRET_KEY, what the service signs and keys outlives a restart and
agrees across servers: the secret is kept in the database, not drawn per process."""

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from referrals.api.dashboard_routes import COOKIE
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e


def bearer(key: str | None) -> dict[str, str]:
    assert key is not None
    return {"Authorization": f"Bearer {key}"}


def portal_link(server: ServerProcess, key: str | None, user_id: str) -> str:
    """The path and query of a fresh portal link for `user_id`."""
    answer = httpx.post(
        f"{server.base_url}/v1/referrers/{user_id}/portal-link", headers=bearer(key)
    )
    assert answer.status_code == 201, answer.text
    parts = urlsplit(answer.json()["url"])
    return f"{parts.path}?{parts.query}"


def sign_in(server: ServerProcess, key: str | None) -> str:
    response = httpx.post(f"{server.base_url}/dashboard/login", data={"key": key})
    assert response.status_code == 303, response.text
    found = re.search(rf"{COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert found is not None
    return found.group(1)


def dashboard(server: ServerProcess, cookie: str) -> int:
    return httpx.get(
        f"{server.base_url}/dashboard", headers={"Cookie": f"{COOKIE}={cookie}"}
    ).status_code


def test_links_sessions_and_fingerprints_outlive_a_restart(
    servers: ServerFactory, database: Path
) -> None:
    first = servers.start(database)  # no REFERRALS_* setting but the database
    key = first.printed_key
    assert "secret kept in the database" in first.stdout_path.read_text()
    enrolled = httpx.post(
        f"{first.base_url}/v1/referrers",
        json={"user_id": "alice", "code": "ALICE", "ip": "192.0.2.1"},
        headers=bearer(key),
    )
    assert enrolled.status_code == 201, enrolled.text
    link = portal_link(first, key, "alice")
    cookie = sign_in(first, key)
    assert httpx.get(f"{first.base_url}{link}").status_code == 200
    assert dashboard(first, cookie) == 200
    first.stop()

    again = servers.start(database)
    assert httpx.get(f"{again.base_url}{link}").status_code == 200
    assert dashboard(again, cookie) == 200
    # The fingerprint kept before the restart still matches: the same_device check holds.
    signups = [
        httpx.post(
            f"{again.base_url}/v1/signups",
            json={"user_id": user, "referral_code": "ALICE", "ip": ip},
            headers=bearer(key),
        )
        for user, ip in (("bob", "192.0.2.1"), ("carol", "192.0.2.2"))
    ]
    assert [s.status_code for s in signups] == [201, 201], [s.text for s in signups]
    statuses = [s.json()["referral"]["status"] for s in signups]
    assert statuses == ["held", "pending"]


def test_servers_started_together_without_a_secret_accept_each_others_links(
    servers: ServerFactory,
) -> None:
    with locale_database("referrals_secret") as url:
        try:
            # Together, so that both find no secret and race to keep theirs.
            with ThreadPoolExecutor(max_workers=2) as pool:
                both = list(pool.map(lambda _: servers.start(url, workers=2), range(2)))
            key = next(server.printed_key for server in both if server.printed_key)
            enrolled = httpx.post(
                f"{both[0].base_url}/v1/referrers", json={"user_id": "alice"}, headers=bearer(key)
            )
            assert enrolled.status_code == 201, enrolled.text
            link = portal_link(both[0], key, "alice")
            cookie = sign_in(both[1], key)
            for server in both:
                # Several requests: they land on either worker of the server.
                for _ in range(4):
                    assert httpx.get(f"{server.base_url}{link}").status_code == 200
                    assert dashboard(server, cookie) == 200
        finally:
            servers.stop_all()  # before the database is dropped under them
