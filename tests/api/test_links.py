"""Tracked links over HTTP: `GET /l/{code}` records a person's click and redirects to
the program's landing URL with `ref` and `click_id`; crawlers, HEAD requests, unknown
codes, paused programs and addresses over their limit are redirected without a click;
nothing raw of the visitor is kept."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.api.links import CLICKS_PER_ADDRESS
from referrals.bootstrap import Services
from referrals.domain.clicks import Click, is_valid_click_id
from tests.api.common import Headers
from tests.clocks import FixedClock

IP = "203.0.113.7"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
LANDING = "https://shop.example/welcome?lang=en&promo=a%20b#top"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
def clock(services: Services) -> FixedClock:
    return FixedClock(services.clock.now())


@pytest.fixture
def client(services: Services, clock: FixedClock) -> TestClient:
    app = create_app(replace(services, clock=clock))
    return TestClient(
        app, follow_redirects=False, client=(IP, 50000), headers={"User-Agent": BROWSER}
    )


@pytest.fixture
def alice(client: TestClient, admin: Headers) -> str:
    """A referrer of the default program, which sends its links to LANDING."""
    landing = client.patch("/v1/programs/default", json={"landing_url": LANDING}, headers=admin)
    assert landing.status_code == 200, landing.text
    enrolled = client.post(
        "/v1/referrers", json={"user_id": "alice", "code": "Alice"}, headers=admin
    )
    assert enrolled.status_code == 201
    return "Alice"


def clicks(services: Services, program: str = "default") -> int:
    with services.store.read() as uow:
        return sum(c.clicks for c in uow.clicks.tally(program, *EVER))


def click_of(services: Services, location: str) -> Click:
    [click_id] = parse_qs(urlsplit(location).query)["click_id"]
    with services.store.read() as uow:
        found = uow.clicks.get(click_id)
    assert found is not None
    return found


def test_a_click_redirects_to_the_landing_url_with_ref_and_click_id(
    client: TestClient, services: Services, alice: str
) -> None:
    response = client.get("/l/alice")  # codes match in any case
    assert response.status_code == 302
    location = response.headers["location"]
    # The landing URL's own query is kept as written, and its fragment stays last.
    assert location.startswith(
        "https://shop.example/welcome?lang=en&promo=a%20b&ref=Alice&click_id="
    )
    assert location.endswith("#top")
    click = click_of(services, location)
    assert is_valid_click_id(click.id)
    assert (click.program_id, click.code, click.referrer_id) == ("default", "Alice", "alice")
    assert click.ip_hash and click.ua_hash and click.ip_hash.startswith("k1:")


def test_the_redirect_is_not_cached_and_leaves_only_an_origin_behind(
    client: TestClient, alice: str
) -> None:
    response = client.get(f"/l/{alice}")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_each_click_has_its_own_unguessable_id(client: TestClient, alice: str) -> None:
    ids = {
        parse_qs(urlsplit(client.get(f"/l/{alice}").headers["location"]).query)["click_id"][0]
        for _ in range(5)
    }
    assert len(ids) == 5 and all(len(i) == 24 for i in ids)


def test_the_referring_site_and_utm_parameters_are_kept_truncated(
    client: TestClient, services: Services, alice: str
) -> None:
    query = "utm_source=newsletter&utm_medium=email&utm_campaign=" + "x" * 300
    response = client.get(
        f"/l/{alice}?{query}", headers={"Referer": "https://News.Example.com/u/123?token=secret"}
    )
    click = click_of(services, response.headers["location"])
    assert click.referring_site == "news.example.com"  # the host only, never the path
    assert (click.utm_source, click.utm_medium, click.utm_term) == ("newsletter", "email", None)
    assert click.utm_campaign == "x" * 100


def test_no_raw_ip_address_or_user_agent_is_stored(
    client: TestClient, services: Services, alice: str, tmp_path: Path
) -> None:
    assert "click_id=" in client.get(f"/l/{alice}").headers["location"]
    services.store.dispose()  # type: ignore[attr-defined]  # everything on disk
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("api.db*"))
    assert b"click" in stored.lower()  # the database holds the click...
    assert IP.encode() not in stored  # ...but neither the address
    assert b"Chrome/131.0" not in stored  # nor the user agent


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "",
    ],
)
def test_a_crawler_is_redirected_without_a_click(
    client: TestClient, services: Services, alice: str, agent: str
) -> None:
    response = client.get(f"/l/{alice}", headers={"User-Agent": agent})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["ref"] == [alice] and "click_id" not in query
    assert clicks(services) == 0


def test_a_head_request_is_redirected_without_a_click(
    client: TestClient, services: Services, alice: str
) -> None:
    response = client.head(f"/l/{alice}")
    assert response.status_code == 302
    assert "click_id" not in response.headers["location"]
    assert clicks(services) == 0


@pytest.mark.parametrize("code", ["NOBODY", "no such code!", "x" * 40])
def test_an_unknown_code_leads_to_the_default_landing_url_without_a_click(
    client: TestClient, services: Services, alice: str, code: str
) -> None:
    response = client.get(f"/l/{code}")
    assert (response.status_code, response.headers["location"]) == (302, LANDING)
    assert clicks(services) == 0


def test_a_paused_programs_code_leads_to_its_landing_url_without_a_click(
    client: TestClient, services: Services, admin: Headers, alice: str
) -> None:
    program = {"id": "partners", "name": "Partners", "landing_url": "https://partners.example/"}
    assert client.post("/v1/programs", json=program, headers=admin).status_code == 201
    body = {"user_id": "pat", "code": "PAT-1"}
    enrolled = client.post("/v1/programs/partners/referrers", json=body, headers=admin)
    assert enrolled.status_code == 201
    assert "click_id=" in client.get("/l/PAT-1").headers["location"]
    paused = client.patch("/v1/programs/partners", json={"status": "paused"}, headers=admin)
    assert paused.status_code == 200
    response = client.get("/l/pat-1")
    assert (response.status_code, response.headers["location"]) == (
        302,
        "https://partners.example/",
    )
    assert clicks(services, "partners") == 1  # the click before the pause only


def test_without_a_landing_url_a_link_is_a_404_problem(
    client: TestClient, services: Services, admin: Headers
) -> None:
    client.post("/v1/referrers", json={"user_id": "alice", "code": "ALICE"}, headers=admin)
    for path in ("/l/ALICE", "/l/NOBODY"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
    assert clicks(services) == 0


def test_an_own_ref_or_click_id_of_the_landing_url_is_replaced(
    client: TestClient, admin: Headers, alice: str
) -> None:
    landing = "https://shop.example/?ref=OLD&x=1&click_id=forged"
    client.patch("/v1/programs/default", json={"landing_url": landing}, headers=admin)
    location = client.get(f"/l/{alice}").headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["ref"] == [alice] and query["x"] == ["1"]
    assert len(query["click_id"]) == 1 and query["click_id"] != ["forged"]


def test_an_address_over_its_click_limit_is_still_redirected_without_a_click(
    client: TestClient, services: Services, clock: FixedClock, alice: str
) -> None:
    for _ in range(CLICKS_PER_ADDRESS):
        assert "click_id=" in client.get(f"/l/{alice}").headers["location"]
    over = client.get(f"/l/{alice}")
    assert over.status_code == 302
    assert parse_qs(urlsplit(over.headers["location"]).query)["ref"] == [alice]
    assert "click_id=" not in over.headers["location"]
    other = TestClient(client.app, follow_redirects=False, client=("198.51.100.9", 1))
    assert (
        "click_id=" in other.get(f"/l/{alice}", headers={"User-Agent": BROWSER}).headers["location"]
    )
    assert clicks(services) == CLICKS_PER_ADDRESS + 1
    clock.advance(seconds=services.settings.rate_limit_window_seconds)
    assert "click_id=" in client.get(f"/l/{alice}").headers["location"]
