"""`POST /v1/programs/{id}/rules/simulate` and `GET /v1/programs/{id}/checks/report` over
HTTP, on SQLite: the backtest, a proposal, bad input, unknown programs, roles."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.common import Headers, signup

NOW = datetime.now(UTC)
WINDOW = {
    "from": (NOW - timedelta(hours=1)).isoformat(),
    "to": (NOW + timedelta(hours=1)).isoformat(),
}
CHEAPER = {"tiers": [{"threshold": 1, "reward_cents": 100}, {"threshold": 2, "reward_cents": 50}]}


@pytest.fixture
def signed_up(client: TestClient, ingest: Headers, alice_code: str, admin: Headers) -> list[Any]:
    bob = client.post("/v1/referrers", json={"user_id": "bob"}, headers=admin).json()["code"]
    made = [signup(client, ingest, f"user{n}", alice_code) for n in range(3)]
    made.append(signup(client, ingest, "user9", bob, email="user9@mailinator.com"))  # held
    return made


def simulate(client: TestClient, admin: Headers, **body: Any) -> Any:
    return client.post("/v1/programs/default/rules/simulate", json=WINDOW | body, headers=admin)


def referrals(client: TestClient, admin: Headers) -> Any:
    return client.get("/v1/referrals", headers=admin).json()["items"]


def test_a_backtest_reproduces_what_was_earned(
    client: TestClient, admin: Headers, signed_up: list[Any]
) -> None:
    response = simulate(client, admin, limit=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backtest"] is True and body["from"] == WINDOW["from"].replace("+00:00", "Z")
    assert body["actual"] == body["simulated"]
    assert body["actual"]["count"] == 4 and body["actual"]["earned_cents"] == 4000
    assert (body["actual"]["held_count"], body["actual"]["held_cents"]) == (1, 1000)
    assert (body["changed"], body["referrers"], body["scanned"]) == (0, 2, 4)
    assert {m["referrer_id"]: m["simulated_cents"] for m in body["movers"]} == {
        "alice": 3000,
        "bob": 1000,
    }


def test_a_proposal_is_priced_beside_what_was_earned(
    client: TestClient, admin: Headers, signed_up: list[Any]
) -> None:
    before = referrals(client, admin)
    body = simulate(client, admin, rules=CHEAPER, limit=1).json()
    assert body["backtest"] is False
    assert body["simulated"]["earned_cents"] == 100 + 50 + 50 + 100
    assert body["simulated"]["tiers"] == [
        {"threshold": 1, "reward_cents": 100, "count": 2, "cents": 200},
        {"threshold": 2, "reward_cents": 50, "count": 2, "cents": 100},
    ]
    assert body["changed"] == 2
    assert body["movers"] == [
        {
            "referrer_id": "alice",
            "actual_count": 3,
            "actual_cents": 3000,
            "actual_held_cents": 0,
            "simulated_count": 3,
            "simulated_cents": 200,
            "simulated_held_cents": 0,
            "change_cents": -2800,
        }
    ]
    assert referrals(client, admin) == before  # read only


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": None}, "from"),
        ({"from": "2026-01-01T00:00:00"}, "from"),  # no time zone
        ({"to": "yesterday"}, "to"),
        ({"to": WINDOW["from"]}, "to"),  # not after `from`
        ({"from": "2020-01-01T00:00:00Z", "to": "2021-06-01T00:00:00Z"}, "to"),  # > 366 days
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"rules": {"tiers": [{"threshold": 2, "reward_cents": 100}]}}, "tiers"),
        ({"rules": {"monthly_cap_cents": -1}}, "monthly_cap_cents"),
        ({"rules": {"checks": {"velocity": "maybe"}}}, "velocity"),
        ({"rules": {"trigger": "click"}}, "trigger"),
        ({"window": "3 months"}, "window"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    client: TestClient, admin: Headers, signed_up: list[Any], body: dict[str, Any], field: str
) -> None:
    before = referrals(client, admin)
    sent = {k: v for k, v in (WINDOW | body).items() if v is not None}
    response = client.post("/v1/programs/default/rules/simulate", json=sent, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert field in response.text
    assert referrals(client, admin) == before
    versions = client.get("/v1/programs/default/rules", headers=admin).json()["items"]
    assert len(versions) == 1


def test_an_unknown_program_is_404(client: TestClient, admin: Headers) -> None:
    response = client.post("/v1/programs/nope/rules/simulate", json=WINDOW, headers=admin)
    assert response.status_code == 404 and response.json()["code"] == "program_not_found"
    report = client.get("/v1/programs/nope/checks/report", params=WINDOW, headers=admin)
    assert report.status_code == 404 and report.json()["code"] == "program_not_found"


def test_simulations_and_reports_are_for_admin_keys_only(
    client: TestClient, ingest: Headers
) -> None:
    assert simulate(client, ingest).status_code == 403
    report = client.get("/v1/programs/default/checks/report", params=WINDOW, headers=ingest)
    assert report.status_code == 403
    assert client.post("/v1/programs/default/rules/simulate", json=WINDOW).status_code == 401


def test_the_checks_report_weighs_flags_against_reviews(
    client: TestClient, admin: Headers, signed_up: list[Any]
) -> None:
    held = signed_up[-1]
    reason = {"reason": "a throwaway address"}
    rejected = client.post(f"/v1/reviews/{held['id']}/reject", json=reason, headers=admin)
    assert rejected.status_code == 200, rejected.text
    response = client.get("/v1/programs/default/checks/report", params=WINDOW, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rewards"], body["scanned"]) == (4, 4)
    rows = {(row["check"], row["mode"]): row for row in body["checks"]}
    disposable = rows["disposable_email", "hold"]
    assert disposable["flagged"]["rewards"] == 1 and disposable["flagged"]["rejected"] == 1
    # The check runs on an address: the others, signed up without one, were not checked.
    assert (disposable["checked"], disposable["precision"], disposable["baseline"]) == (
        1,
        1.0,
        None,
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": WINDOW["to"]}, "from"),
        ({"from": WINDOW["from"], "to": "soon"}, "to"),
        ({"from": WINDOW["to"], "to": WINDOW["from"]}, "to"),
        ({"from": "2026-01-01T00:00:00", "to": WINDOW["to"]}, "from"),
    ],
)
def test_a_bad_report_window_is_refused_naming_the_field(
    client: TestClient, admin: Headers, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/programs/default/checks/report", params=params, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error" and field in response.text
