"""The programs page's checks reports and simulation form, and the simulation page."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.api.common import Headers, signup

TODAY = datetime.now(UTC).date()
FORM = {
    "from": (TODAY - timedelta(days=1)).isoformat(),
    "to": TODAY.isoformat(),
    "tiers": "1:100,2:50",
    "monthly_cap": "",
}


@pytest.fixture
def signed_in(client: TestClient, services: Services) -> TestClient:
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    return client


@pytest.fixture
def history(client: TestClient, ingest: Headers, admin: Headers, alice_code: str) -> Any:
    for n in range(2):
        signup(client, ingest, f"user{n}", alice_code, email=f"user{n}@example.com")
    held = signup(client, ingest, "user9", alice_code, email="user9@mailinator.com")
    reason = {"reason": "a throwaway address"}
    assert client.post(f"/v1/reviews/{held['id']}/reject", json=reason, headers=admin).is_success
    return held


def test_the_programs_page_shows_each_checks_report_and_a_simulation_form(
    signed_in: TestClient, history: Any
) -> None:
    page = signed_in.get("/dashboard/programs")
    assert page.status_code == 200
    section = re.search(r'data-program="default">(.*?)</section>', page.text, re.S)
    assert section is not None
    row = re.search(r'data-check="disposable_email" data-mode="hold">(.*?)</tr>', section[1], re.S)
    assert row is not None
    figures = re.findall(r'<td class="num[^"]*">([^<]+)</td>', row[1])
    # checked, flagged, then rejected or reversed, then approved, open, precision, baseline
    assert figures == ["3", "1", "1", "0", "0", "100%", "0%"]
    assert 'action="/dashboard/programs/default/simulate"' in section[1]
    assert 'name="tiers" value="1:1000,5:1500,10:2000,25:2500"' in section[1]


def test_a_simulation_shows_before_and_after_and_writes_nothing(
    signed_in: TestClient, history: Any, admin: Headers
) -> None:
    before = signed_in.get("/v1/referrals", headers=admin).json()
    page = signed_in.get("/dashboard/programs/default/simulate", params=FORM)
    assert page.status_code == 200, page.text
    cells = dict(re.findall(r'<td>([^<]+)</td>\s*<td class="num actual">([^<]+)</td>', page.text))
    assert cells["Rewards earned"] == "3" and cells["Earned (after the caps)"] == "$30.00"
    simulated = re.findall(r'<td class="num simulated">([^<]+)</td>', page.text)
    assert simulated[:2] == ["3", "$2.00"]  # 1.00 + 0.50 + 0.50
    assert 'data-referrer="alice"' in page.text and "-$28.00" in page.text
    assert 'style="background:#3b6fd4;height:.5rem;width:6.7%' in page.text  # the bar: 2 of 30
    assert signed_in.get("/v1/referrals", headers=admin).json() == before


def test_a_simulation_shows_amounts_in_the_programs_currency(
    signed_in: TestClient, admin: Headers
) -> None:
    """Yen have no decimals: 1500 earned are 1500 JPY, not $15.00."""
    japan = {
        "id": "japan",
        "name": "Japan",
        "currency": "JPY",
        "rules": {"tiers": [{"threshold": 1, "reward_cents": 500}]},
    }
    assert signed_in.post("/v1/programs", json=japan, headers=admin).status_code == 201
    enrolled = signed_in.post(
        "/v1/programs/japan/referrers", json={"user_id": "alice"}, headers=admin
    )
    for n in range(3):
        signup(signed_in, admin, f"user{n}", enrolled.json()["code"])

    page = signed_in.get("/dashboard/programs/japan/simulate", params=FORM)
    assert page.status_code == 200, page.text
    actual = re.findall(r'<td class="num actual">([^<]+)</td>', page.text)
    simulated = re.findall(r'<td class="num simulated">([^<]+)</td>', page.text)
    change = re.findall(r'<td class="num change">([^<]+)</td>', page.text)
    assert (actual[1], simulated[1], change[1]) == ("1500 JPY", "200 JPY", "-1300 JPY")
    assert "<td>from referral 1: 500 JPY</td>" in page.text
    assert "<td>from referral 2: 50 JPY</td>" in page.text
    mover = re.search(r'data-referrer="alice">(.*?)</tr>', page.text)
    assert mover is not None and "1500 JPY" in mover[1] and "-1300 JPY" in mover[1]
    assert "1000 is 1000 JPY" in page.text and "15.00" not in page.text


def test_a_monthly_cap_is_read_in_the_programs_minor_units(
    signed_in: TestClient, admin: Headers
) -> None:
    kuwait = {"id": "kuwait", "name": "Kuwait", "currency": "KWD"}
    assert signed_in.post("/v1/programs", json=kuwait, headers=admin).status_code == 201
    bad = FORM | {"monthly_cap": "1.5"}
    page = signed_in.get("/dashboard/programs/kuwait/simulate", params=bad)
    assert page.status_code == 400
    assert "monthly cap: whole minor units of KWD, e.g. 5000 is 5.000 KWD" in page.text
    assert 'aria-label="Monthly cap in minor units of KWD"' in page.text


def test_the_form_alone_is_filled_in_with_the_rules_in_force(signed_in: TestClient) -> None:
    page = signed_in.get("/dashboard/programs/default/simulate")
    assert page.status_code == 200
    assert 'value="1:1000,5:1500,10:2000,25:2500"' in page.text and 'id="totals"' not in page.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"tiers": "1:100,1:200"}, "tiers"),
        ({"tiers": "5:100"}, "tiers"),
        ({"from": "last week"}, "from"),
        ({"to": (TODAY - timedelta(days=3)).isoformat()}, "to"),
        ({"from": "2020-01-01", "to": "2022-01-01"}, "to"),
        ({"monthly_cap": "-5"}, "monthly cap"),
    ],
)
def test_a_form_that_cannot_be_read_is_shown_back_with_why(
    signed_in: TestClient, change: dict[str, str], named: str
) -> None:
    page = signed_in.get("/dashboard/programs/default/simulate", params=FORM | change)
    assert page.status_code == 400
    assert f"Not simulated: {named}" in page.text and 'id="totals"' not in page.text


def test_an_unknown_program_is_a_404_page(signed_in: TestClient) -> None:
    page = signed_in.get("/dashboard/programs/nope/simulate", params=FORM)
    assert page.status_code == 404 and "nope" in page.text


def test_the_simulation_page_needs_a_session(client: TestClient) -> None:
    page = client.get("/dashboard/programs/default/simulate", params=FORM, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].endswith("/dashboard/login")
