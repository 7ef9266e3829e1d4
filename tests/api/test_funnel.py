"""GET /v1/programs/{id}/funnel: a click on a tracked link, the signup it brought, a
purchase and a partial refund, an unattributed sale and a crawler's visit, added up per
day and per referrer; bad windows are 400 and unknown programs 404."""

from datetime import UTC, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from tests.api.common import Headers

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
RULES = {
    "tiers": [{"threshold": 1, "reward_cents": 500}],
    "share": {"tiers": [{"threshold": 1, "bps": 1000}], "months": 0, "ceiling_cents": 0},
}


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(
        create_app(services),
        follow_redirects=False,
        client=("203.0.113.9", 50000),
        headers={"User-Agent": BROWSER},
    )


@pytest.fixture
def shop(client: TestClient, admin: Headers, ingest: Headers) -> str:
    """The shop program: alice's link clicked twice (and once by a crawler), bob signed
    up from a click and bought for $100.00, refunded $25.00; carol bought unreferred."""
    program = {
        "id": "shop",
        "name": "Shop",
        "landing_url": "https://shop.example/",
        "rules": RULES,
    }
    assert client.post("/v1/programs", json=program, headers=admin).status_code == 201
    code = client.post(
        "/v1/programs/shop/referrers", json={"user_id": "alice"}, headers=admin
    ).json()["code"]
    first = client.get(f"/l/{code}")
    assert first.status_code == 302
    assert client.get(f"/l/{code}").status_code == 302
    assert client.get(f"/l/{code}", headers={"User-Agent": "Slackbot 1.0"}).status_code == 302
    [click_id] = parse_qs(urlsplit(first.headers["location"]).query)["click_id"]
    signed = client.post(
        "/v1/signups", json={"user_id": "bob", "click_id": click_id}, headers=ingest
    )
    assert signed.status_code == 201, signed.text
    sale = {
        "external_id": "in_1",
        "user_id": "bob",
        "amount_minor": 10_000,
        "currency": "USD",
        "occurred_at": signed.json()["referral"]["created_at"],
        "kind": "purchase",
        "program_id": "shop",
    }
    assert client.post("/v1/sales", json=sale, headers=ingest).status_code == 201
    refund = {"sale_external_id": "in_1", "amount_minor": 2_500, "external_id": "re_1"}
    assert client.post("/v1/refunds", json=refund, headers=ingest).status_code == 201
    stranger = sale | {"external_id": "in_2", "user_id": "carol", "amount_minor": 3_000}
    assert client.post("/v1/sales", json=stranger, headers=ingest).status_code == 201
    return code


@pytest.mark.usefixtures("shop")
def test_the_funnel_adds_up_each_stage(
    client: TestClient, services: Services, admin: Headers
) -> None:
    today = services.clock.now().astimezone(UTC).date()
    window = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    got = client.get("/v1/programs/shop/funnel", params=window, headers=admin)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["from"], body["to"], body["currency"]) == (window["from"], window["to"], "USD")
    total = body["total"]
    assert (total["clicks"], total["signups"], total["conversions"]) == (2, 1, 1)
    assert total["revenue_minor"] == 7_500
    # bob's $5.00 signup reward and 10 % of the $75.00 the sale kept.
    assert total["rewards_minor"] == 500 + 750
    assert total["signup_rate"] == 0.5 and total["conversion_rate"] == 1.0
    assert body["k_factor"] == 1.0 and body["cost_per_signup_minor"] == 1_250
    assert body["unattributed"] == {"sales": 1, "revenue_minor": 3_000}
    assert [d["day"] for d in body["days"]] == [window["from"]]
    assert body["days"][0]["clicks"] == 2
    [alice] = body["referrers"]
    assert (alice["referrer_id"], alice["clicks"], alice["signups"]) == ("alice", 2, 1)


@pytest.mark.usefixtures("shop")
def test_the_default_window_is_the_last_30_days(client: TestClient, admin: Headers) -> None:
    body = client.get("/v1/programs/shop/funnel", headers=admin).json()
    assert len(body["days"]) == 30 and body["total"]["signups"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"from": "2026-03-01", "to": "2026-03-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-03-01"}, "to"),
        ({"to": "yesterday"}, "to"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_a_bad_window_is_400_naming_the_field(
    client: TestClient, admin: Headers, query: dict[str, str], field: str
) -> None:
    got = client.get("/v1/programs/default/funnel", params=query, headers=admin)
    assert got.status_code == 400, got.text
    assert got.json()["code"] == "validation_error" and field in got.text


def test_an_unknown_program_is_404_and_ingest_keys_are_403(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    missing = client.get("/v1/programs/nope/funnel", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "program_not_found"
    assert client.get("/v1/programs/default/funnel", headers=ingest).status_code == 403
