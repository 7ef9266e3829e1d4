"""The dashboard's programs page: every program, the version in force and those to come."""

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from referrals.api import dashboard_routes
from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.services.keys import create_key

Headers = dict[str, str]


def test_the_programs_page_shows_each_version_and_which_is_in_force(
    client: TestClient, services: Services, admin: Headers
) -> None:
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    partners = {
        "id": "partners",
        "name": "Partner program",
        "currency": "USD",
        "rules": {"tiers": [{"threshold": 1, "reward_cents": 2000}], "hold_days": 14},
    }
    assert client.post("/v1/programs", json=partners, headers=admin).status_code == 201
    later = {
        "effective_from": datetime(2099, 1, 1, tzinfo=UTC).isoformat(),
        "rules": {
            "tiers": [{"threshold": 1, "reward_cents": 2500}],
            "checks": {"velocity": "shadow"},
        },
    }
    assert client.post("/v1/programs/partners/rules", json=later, headers=admin).status_code == 201

    page = client.get("/dashboard/programs")
    assert page.status_code == 200
    assert 'aria-current="page"' in page.text and ">Programs</a>" in page.text
    sections = dict(re.findall(r'data-program="([a-z0-9-]+)">(.*?)</section>', page.text, re.S))
    assert list(sections) == ["default", "partners"]
    assert (
        "Default program" in sections["default"] and "1: $10.00, 5: $15.00" in sections["default"]
    )
    rows = dict(re.findall(r'data-version="(\d+)">(.*?)</tr>', sections["partners"], re.S))
    assert "in force" in rows["1"] and "1: $20.00" in rows["1"] and ">14<" in rows["1"]
    assert "scheduled" in rows["2"] and "2099-01-01 00:00:00 UTC" in rows["2"]
    assert "velocity: shadow" in rows["2"] and "velocity: hold" in rows["1"]


def test_a_programs_amounts_are_shown_in_its_currency(
    client: TestClient, services: Services, admin: Headers
) -> None:
    """Yen have no decimals: 500 is 500 JPY, never $5.00; the form says its amounts
    are minor units of JPY."""
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    japan = {
        "id": "japan",
        "name": "Japan",
        "currency": "JPY",
        "rules": {
            "tiers": [{"threshold": 1, "reward_cents": 500}, {"threshold": 5, "reward_cents": 800}],
            "monthly_cap_cents": 3000,
            "referee_reward_cents": 100,
        },
    }
    assert client.post("/v1/programs", json=japan, headers=admin).status_code == 201

    page = client.get("/dashboard/programs")
    assert page.status_code == 200
    sections = dict(re.findall(r'data-program="([a-z0-9-]+)">(.*?)</section>', page.text, re.S))
    (row,) = re.findall(r'data-version="1">(.*?)</tr>', sections["japan"], re.S)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert "1: 500 JPY, 5: 800 JPY" in cells and "3000 JPY / none" in cells
    assert "100 JPY" in cells
    assert "1000 is 1000 JPY" in sections["japan"] and "1000 is $10.00" in sections["default"]
    assert 'aria-label="Monthly cap in minor units of JPY"' in sections["japan"]
    assert "$5.00" not in sections["japan"] and "30.00" not in sections["japan"]


def test_the_overview_shows_one_programs_figures_or_every_programs(
    client: TestClient, services: Services, admin: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard_routes, "OVERVIEW_TTL_S", 0.0)  # signing in showed one
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    partners = {"id": "partners", "name": "Partners", "currency": "USD"}
    assert client.post("/v1/programs", json=partners, headers=admin).status_code == 201
    codes = {}
    for program in ("default", "partners"):
        enrolled = client.post(
            f"/v1/programs/{program}/referrers", json={"user_id": "alice"}, headers=admin
        )
        codes[program] = enrolled.json()["code"]
    for user, program in (("u1", "partners"), ("u2", "partners"), ("u3", "default")):
        body = {"user_id": user, "referral_code": codes[program]}
        assert client.post("/v1/signups", json=body, headers=admin).status_code == 201

    def signups_shown(query: str) -> str:
        page = client.get("/dashboard" + query)
        assert page.status_code == 200
        found = re.search(r"Signups per day: (\d+) in", page.text)
        assert found is not None
        return found.group(1)

    assert signups_shown("") == "3"
    assert signups_shown("?program=partners") == "2"
    assert signups_shown("?program=default") == "1"
    page = client.get("/dashboard?program=partners").text
    assert '<option value="partners" selected>' in page
    assert re.search(r'class="referrer">alice</td><td class="num count">2</td>', page)
    missing = client.get("/dashboard?program=nope")
    assert missing.status_code == 404 and "No such program" in missing.text


def test_the_funnel_page_charts_each_stage_and_lists_the_referrers(
    client: TestClient, services: Services, admin: Headers
) -> None:
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    shop = {"id": "shop", "name": "Shop", "landing_url": "https://shop.example/"}
    assert client.post("/v1/programs", json=shop, headers=admin).status_code == 201
    code = client.post(
        "/v1/programs/shop/referrers", json={"user_id": "alice"}, headers=admin
    ).json()["code"]
    body = {"user_id": "bob", "referral_code": code}
    assert client.post("/v1/signups", json=body, headers=admin).status_code == 201

    page = client.get("/dashboard/programs/shop/funnel")
    assert page.status_code == 200, page.text
    assert re.search(r'data-stage="signups"><td>Signups</td><td class="num">1<', page.text)
    assert page.text.count('<svg class="chart"') == 4  # clicks, signups, conversions, revenue
    assert 'data-referrer="alice"' in page.text
    assert "/dashboard/programs/shop/funnel" in client.get("/dashboard/programs").text
    bad = client.get("/dashboard/programs/shop/funnel", params={"from": "2026-13-01"})
    assert bad.status_code == 400 and "a day, YYYY-MM-DD" in bad.text
    missing = client.get("/dashboard/programs/nope/funnel")
    assert missing.status_code == 404


def test_the_funnel_page_shows_money_in_the_programs_currency(
    client: TestClient, services: Services, admin: Headers
) -> None:
    """A KWD program: 3 decimals, so 1500 fils are 1.500 KWD, not $15.00."""
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    kuwait = {
        "id": "kuwait",
        "name": "Kuwait",
        "currency": "KWD",
        "rules": {"tiers": [{"threshold": 1, "reward_cents": 1500}]},
    }
    assert client.post("/v1/programs", json=kuwait, headers=admin).status_code == 201
    code = client.post(
        "/v1/programs/kuwait/referrers", json={"user_id": "alice"}, headers=admin
    ).json()["code"]
    body = {"user_id": "bob", "referral_code": code}
    assert client.post("/v1/signups", json=body, headers=admin).status_code == 201

    page = client.get("/dashboard/programs/kuwait/funnel")
    assert page.status_code == 200, page.text
    assert re.search(r'data-stage="rewards"><td>Rewards</td><td class="num">1.500 KWD<', page.text)
    assert re.search(r'data-stage="revenue">.*?<td class="num">0.000 KWD<', page.text)
    assert "Cost per acquired user: 1.500 KWD." in page.text
    assert re.search(r'data-referrer="alice">.*?<td class="num">1.500 KWD</td></tr>', page.text)
    assert "Revenue per day (minor units of KWD)" in page.text and "$" not in page.text
