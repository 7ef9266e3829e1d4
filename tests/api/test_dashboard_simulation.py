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
    assert cells["Rewards earned"] == "3" and cells["Earned (after the caps)"] == "30.00"
    simulated = re.findall(r'<td class="num simulated">([^<]+)</td>', page.text)
    assert simulated[:2] == ["3", "2.00"]  # 1.00 + 0.50 + 0.50
    assert 'data-referrer="alice"' in page.text and "-28.00" in page.text
    assert 'style="background:#3b6fd4;height:.5rem;width:6.7%' in page.text  # the bar: 2 of 30
    assert signed_in.get("/v1/referrals", headers=admin).json() == before


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
