"""Failed authentication limited per client address across two real `referrals serve`
processes on one PostgreSQL database, behind a proxy on this machine (uvicorn trusts
its X-Forwarded-For from 127.0.0.1), as the README's "Rate limits" says."""

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import ServerFactory
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e

LIMIT = 2
BAD = {"Authorization": "Bearer rk_not-a-real-key"}
FROM_A = {"X-Forwarded-For": "203.0.113.7"}
FROM_B = {"X-Forwarded-For": "198.51.100.20"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    with locale_database("referrals_e2e_limits") as url:
        yield url


def test_two_servers_share_an_address_s_failed_authentications(
    servers: ServerFactory, pg_url: str
) -> None:
    env = {"REFERRALS_AUTH_FAILURE_LIMIT": str(LIMIT)}
    first = servers.start(pg_url, env)
    second = servers.start(pg_url, env)
    assert first.printed_key is not None
    good = {"Authorization": f"Bearer {first.printed_key}"}
    one, two = first.client(), second.client()

    for _ in range(LIMIT):
        assert one.get("/v1/referrals", headers=BAD | FROM_A).status_code == 401
    limited = one.get("/v1/referrals", headers=good | FROM_A)
    assert_limited(limited)
    # The second server counts the address's next failure in the same database.
    assert_limited(two.get("/v1/referrals", headers=BAD | FROM_A))
    assert_limited(two.get("/v1/referrals", headers=good | FROM_A))
    # Another address, and the proxy's own, are served; /healthz always is.
    for client in (one, two):
        assert client.get("/v1/referrals", headers=good | FROM_B).status_code == 200
        assert client.get("/v1/referrals", headers=good).status_code == 200
        assert client.get("/healthz", headers=FROM_A).status_code == 200


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
