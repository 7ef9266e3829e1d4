"""A payout run over programs in two currencies, over HTTP: Alice refers in the default
program (USD, $10 a referral) and in a JPY one (500 yen a referral). The run keeps one
total per currency everywhere it shows (the run, the list, the dry run, the report, the
event, the dashboard), each amount written with its currency's decimals, and never adds
dollars to yen: 2000 cents + 1000 yen is not 3000 of anything."""

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.domain.program import BEGINNING, Program, RuleVersion
from referrals.domain.tiers import TierSchedule
from referrals.services.keys import create_key
from tests.api.common import Headers, signup

JAPAN = {
    "id": "japan",
    "name": "Japan",
    "currency": "JPY",
    "rules": {"tiers": [{"threshold": 1, "reward_cents": 500}]},
}
OCTOBER = "2026-10-15T08:00:00Z"
USD = {"currency": "USD", "exponent": 2, "referrer_count": 1, "referral_count": 2}
JPY = {"currency": "JPY", "exponent": 0, "referrer_count": 1, "referral_count": 2}
TOTALS = [
    {**JPY, "total_cents": 1000, "clawback_cents": 0, "carried_forward_cents": 0},
    {**USD, "total_cents": 2000, "clawback_cents": 0, "carried_forward_cents": 0},
]


def enroll(client: TestClient, admin: Headers, program: str | None = None) -> str:
    path = f"/v1/programs/{program}/referrers" if program else "/v1/referrers"
    response = client.post(path, json={"user_id": "alice"}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def japan_since_the_beginning(services: Services) -> RuleVersion:
    """The JPY program, its rules in force since before October (a program made through
    the API prices only from its creation on, and October must have ended to be paid)."""
    rules = RuleVersion(
        tiers=TierSchedule.parse("1:500"),
        program_id="japan",
        version=1,
        effective_from=BEGINNING,
        created_at=BEGINNING,
    )
    with services.store.unit_of_work() as uow:
        uow.programs.add(Program("japan", "Japan", "JPY", created_at=BEGINNING), rules)
        uow.commit()
    return rules


@pytest.fixture
def earned(client: TestClient, admin: Headers, services: Services) -> None:
    """Two referrals of Alice's in each program, in October 2026."""
    japan_since_the_beginning(services)
    dollars, yen = enroll(client, admin), enroll(client, admin, "japan")
    for user in ("bob", "carol"):
        signup(client, admin, user, dollars, signed_up_at=OCTOBER)
        signup(client, admin, user, yen, signed_up_at=OCTOBER)


def no_cross_sum(text: str) -> None:
    """Neither 2000 + 1000 nor $20 + 1000 yen as dollars appears."""
    assert "3000" not in text and "30.00" not in text


@pytest.mark.usefixtures("earned")
def test_a_run_keeps_one_total_per_currency(client: TestClient, admin: Headers) -> None:
    response = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["referrer_count"], run["referral_count"]) == (1, 4)
    assert (run["total_cents"], run["clawback_cents"], run["carried_forward_cents"]) == (
        None,
        None,
        None,
    )
    assert run["totals"] == TOTALS
    no_cross_sum(response.text)

    one = client.get("/v1/payouts/2026-10", headers=admin)
    listed = client.get("/v1/payouts", headers=admin)
    assert one.json() == run and listed.json()["items"] == [run]


@pytest.mark.usefixtures("earned")
def test_the_report_writes_each_line_in_its_currency(client: TestClient, admin: Headers) -> None:
    assert client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).status_code == 200
    report = client.get("/v1/payouts/2026-10/report", headers=admin)
    assert report.status_code == 200
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert [(r["program"], r["amount_cents"], r["amount"], r["currency"]) for r in rows] == [
        ("default", "2000", "20.00", "USD"),
        ("japan", "1000", "1000", "JPY"),
    ]
    no_cross_sum(report.text)


@pytest.mark.usefixtures("earned")
def test_a_dry_run_sums_per_currency(client: TestClient, admin: Headers) -> None:
    body = {"period": "2026-10", "dry_run": True}
    response = client.post("/v1/payouts", json=body, headers=admin)
    assert response.status_code == 200
    preview = response.json()
    assert preview["total_cents"] is None and preview["totals"] == TOTALS
    assert [(line["program_id"], line["currency"]) for line in preview["lines"]] == [
        ("default", "USD"),
        ("japan", "JPY"),
    ]
    no_cross_sum(response.text)


@pytest.mark.usefixtures("earned")
def test_the_completed_event_carries_each_currencys_total(
    client: TestClient, admin: Headers
) -> None:
    assert client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).status_code == 200
    events = client.get("/v1/events", headers=admin).json()["items"]
    completed: Any = next(e["data"] for e in events if e["type"] == "payout.completed")
    assert completed["total_cents"] is None
    assert [(t["currency"], t["total_cents"]) for t in completed["totals"]] == [
        ("JPY", 1000),
        ("USD", 2000),
    ]


@pytest.mark.usefixtures("earned")
def test_the_dashboard_shows_each_currency_apart(
    client: TestClient, admin: Headers, services: Services
) -> None:
    assert client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).status_code == 200
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    client.post("/dashboard/login", data={"key": plaintext}, follow_redirects=False)

    page = client.get("/dashboard/payouts")
    assert page.status_code == 200
    assert '<span class="amount" data-currency="JPY">1000 JPY</span>' in page.text
    assert '<span class="amount" data-currency="USD">$20.00</span>' in page.text
    no_cross_sum(page.text)

    overview = client.get("/dashboard")
    assert overview.status_code == 200
    assert "1000 JPY, $20.00" in overview.text  # paid, per currency
    no_cross_sum(overview.text)


def test_a_program_in_any_iso_currency_is_created(client: TestClient, admin: Headers) -> None:
    kuwait = {**JAPAN, "id": "kuwait", "currency": "KWD"}
    response = client.post("/v1/programs", json=kuwait, headers=admin)
    assert response.status_code == 201 and response.json()["currency"] == "KWD"


def test_a_programs_currency_never_changes(client: TestClient, admin: Headers) -> None:
    assert client.post("/v1/programs", json=JAPAN, headers=admin).status_code == 201
    response = client.patch("/v1/programs/japan", json={"currency": "USD"}, headers=admin)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert client.get("/v1/programs/japan", headers=admin).json()["currency"] == "JPY"


def test_a_dry_run_names_the_program_and_currency_of_each_held_reward(
    client: TestClient, admin: Headers, services: Services
) -> None:
    japan_since_the_beginning(services)
    yen = enroll(client, admin, "japan")
    body = {"email": "m@yopmail.com", "signed_up_at": OCTOBER}
    held = signup(client, admin, "mallory", yen, **body)
    assert held["status"] == "held"
    response = client.post(
        "/v1/payouts", json={"period": "2026-10", "dry_run": True}, headers=admin
    )
    assert response.status_code == 200
    [shown] = response.json()["held"]
    assert shown == {
        "referral_id": held["id"],
        "referrer_id": "alice",
        "program_id": "japan",
        "reward_cents": 500,
        "currency": "JPY",
        "reasons": ["yopmail.com is a disposable domain"],
    }
