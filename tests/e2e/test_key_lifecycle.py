"""A revoked key, and a signed-out dashboard session, are refused within a second on every
server: two real `referrals serve` processes on one PostgreSQL database, each with its
own cache of keys, sharing nothing but the database (and the secret that signs cookies)."""

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from referrals.api.dashboard_routes import COOKIE
from tests.e2e.conftest import ServerFactory, ServerProcess
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e

WITHIN_S = 1.0
SECRET = "e2e-shared-secret-0123456789abcdef0123"


@pytest.fixture
def two_servers(servers: ServerFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with locale_database("referrals_keys") as url:
        env = {"REFERRALS_SECRET_KEY": SECRET}
        first, second = servers.start(url, env), servers.start(url, env)
        assert first.printed_key is not None, first.output()
        try:
            yield first, second
        finally:
            servers.stop_all()  # before the database is dropped under them


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sign_in(server: ServerProcess, key: str) -> str:
    """The session cookie's value after signing in on `server`."""
    response = httpx.post(f"{server.base_url}/dashboard/login", data={"key": key})
    assert response.status_code == 303, response.text
    found = re.search(rf"{COOKIE}=([^;]+)", response.headers["set-cookie"])
    assert found is not None
    return found.group(1)


def dashboard(server: ServerProcess, cookie: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/dashboard", headers={"Cookie": f"{COOKIE}={cookie}"})


def refused_within(check: Callable[[], bool], limit_s: float = 5.0) -> float:
    """Seconds until `check()` holds (it says the request was refused), polled."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit_s, "still accepted"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_revoked_key_and_its_sessions_are_refused_within_a_second_on_both_servers(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    first = two_servers[0]
    admin = bearer(first.printed_key or "")
    made = httpx.post(
        f"{first.base_url}/v1/keys", json={"role": "admin", "name": "e2e"}, headers=admin
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    cookie = sign_in(first, key)
    # Both servers have just read the key (into their caches) and accept the session.
    for server in two_servers:
        assert httpx.get(f"{server.base_url}/v1/keys", headers=bearer(key)).status_code == 200
        assert dashboard(server, cookie).status_code == 200
    revoked = httpx.post(f"{first.base_url}/v1/keys/{key_id}/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    done = time.monotonic()
    for server in two_servers:

        def refused(server: ServerProcess = server) -> bool:
            answer = httpx.get(f"{server.base_url}/v1/keys", headers=bearer(key))
            return answer.status_code == 401

        refused_within(refused)
        assert dashboard(server, cookie).status_code == 303  # to the sign-in page
    elapsed = time.monotonic() - done
    assert elapsed < WITHIN_S
    # The other keys are untouched: the first admin key still works on both.
    for server in two_servers:
        assert httpx.get(f"{server.base_url}/v1/keys", headers=admin).status_code == 200


def test_a_session_signed_out_on_one_server_is_refused_on_the_other_within_a_second(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_servers
    cookie = sign_in(first, first.printed_key or "")
    page = dashboard(second, cookie)  # a copy of the cookie, used on the other server
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    signed_out = httpx.post(
        f"{second.base_url}/dashboard/logout",
        data={"csrf": found.group(1)},
        headers={"Cookie": f"{COOKIE}={cookie}"},
    )
    assert signed_out.status_code == 303
    elapsed = refused_within(lambda: dashboard(first, cookie).status_code == 303)
    assert elapsed < WITHIN_S
    assert dashboard(second, cookie).status_code == 303
    # Signing in again makes a new session; the old cookie stays refused.
    assert dashboard(first, sign_in(first, first.printed_key or "")).status_code == 200
    assert dashboard(first, cookie).status_code == 303
