"""Rate limits per client address: failed authentication (shared through the store) and
the public routes (per process); 429 problems with Retry-After, /healthz never limited."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from referrals.api import ratelimits
from referrals.api.app import create_app
from referrals.api.ratelimits import NEVER_LIMITED, Windows, client_address, is_public
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.errors import DomainError
from referrals.domain.model import Role
from referrals.ports import Store, UnitOfWork
from referrals.services.keys import create_key
from tests.api.test_ingest_answers import ROUTES, Access
from tests.clocks import FixedClock
from tests.postgresql import migrated_database

LIMIT = 3
PUBLIC_LIMIT = 5
WINDOW_S = 60
BAD = {"Authorization": "Bearer rk_not-a-real-key"}
PROBLEM = "application/problem+json"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "auth_failure_limit": LIMIT,
        "public_rate_limit": PUBLIC_LIMIT,
        "rate_limit_window_seconds": WINDOW_S,
    }


class CountingStore:
    """The store, counting what the app asks of it: reads, writes and failure counts."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.count_fails = False  # the store cannot write (disk full)

    def unit_of_work(self) -> UnitOfWork:
        self.calls["unit_of_work"] += 1
        return self.inner.unit_of_work()

    def read(self) -> UnitOfWork:
        self.calls["read"] += 1
        return self.inner.read()

    def check(self) -> None:
        self.calls["check"] += 1
        self.inner.check()

    def check_write(self) -> None:
        self.calls["check_write"] += 1
        self.inner.check_write()

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        self.calls["count_failure"] += 1
        if self.count_fails:
            raise DomainError("no room left")
        return self.inner.count_failure(subject, now, window)

    def dispose(self) -> None:
        self.inner.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def store(services: Services) -> CountingStore:
    return CountingStore(services.store)


@pytest.fixture
def app(services: Services, clock: FixedClock, store: CountingStore) -> FastAPI:
    return create_app(replace(services, clock=clock, store=store))


def at(app: FastAPI, address: str) -> TestClient:
    """A client of `app` connecting from `address`."""
    return TestClient(app, client=(address, 50000), follow_redirects=False)


@pytest.fixture
def one(app: FastAPI) -> TestClient:
    return at(app, "203.0.113.7")


@pytest.fixture
def other(app: FastAPI) -> TestClient:
    return at(app, "198.51.100.20")


def fail(client: TestClient, times: int = LIMIT) -> None:
    for _ in range(times):
        assert client.get("/v1/referrals", headers=BAD).status_code == 401


def assert_limited(response: Any, retry_after: int = WINDOW_S) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == str(retry_after)
    problem = response.json()
    assert (problem["status"], problem["code"]) == (429, "rate_limited")
    assert set(problem) >= {"type", "title", "status", "detail", "code"}
    assert f"retry after {retry_after} s" in problem["detail"]


# -- failed authentication --------------------------------------------------------------


def test_bad_keys_past_the_limit_get_a_429_with_retry_after(one: TestClient) -> None:
    fail(one)
    assert_limited(one.get("/v1/referrals", headers=BAD))


def test_an_address_over_the_limit_is_refused_before_the_database_is_read(
    one: TestClient, admin: dict[str, str], store: CountingStore
) -> None:
    fail(one)
    store.calls.clear()
    for _ in range(50):
        assert_limited(one.get("/v1/referrals", headers=BAD))
    # Its good key too: telling one from the other would take the read it must not cost.
    assert_limited(one.get("/v1/referrals", headers=admin))
    assert_limited(one.post("/v1/signups", json={"user_id": "x"}, headers=BAD))
    assert store.calls == {}


def test_each_failure_costs_one_count_and_a_success_none(
    one: TestClient, admin: dict[str, str], store: CountingStore
) -> None:
    assert one.get("/v1/referrals", headers=admin).status_code == 200
    store.calls.clear()
    assert one.get("/v1/referrals", headers=admin).status_code == 200
    assert store.calls["count_failure"] == 0 and store.calls["unit_of_work"] == 0
    fail(one, 2)
    assert store.calls["count_failure"] == 2


def test_the_limit_ends_with_the_window(
    one: TestClient, admin: dict[str, str], clock: FixedClock
) -> None:
    fail(one)
    clock.advance(seconds=WINDOW_S - 1)
    assert_limited(one.get("/v1/referrals", headers=admin), retry_after=1)
    clock.advance(seconds=1)
    assert one.get("/v1/referrals", headers=admin).status_code == 200
    fail(one)  # a new window: the limit's worth of failures again
    assert_limited(one.get("/v1/referrals", headers=BAD))


def test_a_missing_key_is_a_failed_authentication(one: TestClient) -> None:
    for _ in range(LIMIT):
        assert one.get("/v1/referrals").status_code == 401
    assert_limited(one.get("/v1/referrals"))


def test_a_wrong_role_is_not_a_failed_authentication(
    one: TestClient, ingest: dict[str, str]
) -> None:
    for _ in range(LIMIT * 3):
        assert one.get("/v1/referrals", headers=ingest).status_code == 403


def test_other_addresses_are_not_limited_by_one_over_the_limit(
    one: TestClient, other: TestClient, admin: dict[str, str]
) -> None:
    fail(one)
    assert other.get("/v1/referrals", headers=admin).status_code == 200
    assert other.get("/v1/referrals", headers=BAD).status_code == 401


def test_healthz_is_never_limited(one: TestClient) -> None:
    fail(one)
    for _ in range(PUBLIC_LIMIT * 3):
        assert one.get("/healthz").status_code == 200


def test_the_dashboard_sign_in_counts_bad_keys(one: TestClient, admin: dict[str, str]) -> None:
    for _ in range(LIMIT):
        assert one.post("/dashboard/login", data={"key": "rk_wrong"}).status_code == 401
    assert_limited(one.post("/dashboard/login", data={"key": "rk_wrong"}))
    assert_limited(one.get("/v1/referrals", headers=admin))  # one count for every route


def test_the_portal_counts_bad_link_tokens(
    one: TestClient, other: TestClient, admin: dict[str, str]
) -> None:
    code = other.post("/v1/referrers", json={"user_id": "alice"}, headers=admin).json()["code"]
    for _ in range(LIMIT):
        assert one.get(f"/r/{code}?token=forged").status_code == 403
    assert_limited(one.get(f"/r/{code}?token=forged"))


def test_when_the_store_cannot_count_this_process_still_limits(
    one: TestClient, store: CountingStore
) -> None:
    store.count_fails = True
    fail(one)
    assert_limited(one.get("/v1/referrals", headers=BAD))


@pytest.mark.parametrize("settings_overrides", [{"auth_failure_limit": 0}])
def test_a_limit_of_zero_is_no_limit(one: TestClient, store: CountingStore) -> None:
    fail(one, 30)
    assert store.calls["count_failure"] == 0


# -- public routes ----------------------------------------------------------------------


def test_public_routes_are_limited_per_address(
    one: TestClient, other: TestClient, clock: FixedClock
) -> None:
    for path in ["/docs", "/openapi.json", "/readyz", "/dashboard/login", "/redoc"]:
        assert one.get(path).status_code == 200, path
    assert_limited(one.get("/docs"))
    assert_limited(one.get("/r/ANYCODE"))
    assert other.get("/docs").status_code == 200
    clock.advance(seconds=WINDOW_S)
    assert one.get("/docs").status_code == 200


def test_routes_that_take_a_key_are_not_counted_as_public(
    one: TestClient, admin: dict[str, str]
) -> None:
    for _ in range(PUBLIC_LIMIT * 2):
        assert one.get("/v1/referrals", headers=admin).status_code == 200


# Public, but not under the public pages' limit: a tracked link always redirects (its
# clicks have a limit of their own, api/links.py), the snippet is a static file that
# every visitor of the product's pages loads, and Stripe's webhook carries its own
# signature and comes from few addresses, in bursts.
TRACKING = frozenset(
    {
        "GET /l/{code}",
        "HEAD /l/{code}",
        "GET /v1/snippet.js",
        "POST /v1/integrations/stripe/webhook",
    }
)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_route_without_a_key_but_the_probes_is_public(name: str) -> None:
    method, _, path = name.partition(" ")
    path = path.replace("{code:path}", "ALICE") + ("/swagger-ui.css" if method == "MOUNT" else "")
    public = ROUTES[name][0] is Access.PUBLIC and path not in NEVER_LIMITED
    public = public and name not in TRACKING
    # The sign-in form's POST is listed as refused to an ingest key; it needs no key.
    assert is_public(path) is (public or name == "POST /dashboard/login")


# -- two servers on one database -----------------------------------------------------------


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    with migrated_database("referrals_limits") as url:
        yield url


def test_two_servers_on_one_postgresql_database_share_the_failure_count(
    postgresql_url: str, tmp_path: Any
) -> None:
    settings = Settings(
        database_url=postgresql_url, reports_url=str(tmp_path), auth_failure_limit=LIMIT
    )
    first, second = build(settings), build(settings)
    try:
        key, _ = create_key(first.store, first.clock, Role.ADMIN)
        good = {"Authorization": f"Bearer {key}"}
        a = at(create_app(first), "203.0.113.7")
        b = at(create_app(second), "203.0.113.7")
        fail(a, LIMIT - 1)
        assert b.get("/v1/referrals", headers=BAD).status_code == 401  # the limit's worth
        assert_limited(b.get("/v1/referrals", headers=good))  # b saw it reached
        assert_limited(a.get("/v1/referrals", headers=BAD))  # a learns it from the store
        assert_limited(a.get("/v1/referrals", headers=good))
    finally:
        first.store.dispose()
        second.store.dispose()


# -- addresses and bounds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "subject"),
    [
        (("203.0.113.7", 1), "203.0.113.7"),
        (("2001:db8:1:2::1", 1), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff:ffff:ffff:9", 1), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.7", 1), "203.0.113.7"),
        (None, "unknown"),
        (("x" * 100, 1), None),
    ],
)
def test_an_address_is_its_ip_and_an_ipv6_one_its_64(
    client: tuple[str, int] | None, subject: str | None
) -> None:
    found = client_address({"client": client})
    if subject is None:
        assert len(found) == 32 and found == client_address({"client": client})
    else:
        assert found == subject


def test_this_process_keeps_a_bounded_number_of_counts() -> None:
    windows = Windows(timedelta(seconds=60), size=3)
    now = FixedClock().now()
    for n in range(10):
        windows.hit(f"10.0.0.{n}", now)
    kept = [windows.current(f"10.0.0.{n}") for n in range(10)]
    assert kept == [None] * 7 + [(now + timedelta(seconds=60), 1)] * 3


def test_every_route_but_the_probes_documents_its_429(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for operation in operations.values():
            documented = operation["responses"].get("429")
            if path in ratelimits.NEVER_LIMITED:
                assert documented is None
            else:
                assert "Retry-After" in documented["headers"], path
                assert PROBLEM in documented["content"], path
