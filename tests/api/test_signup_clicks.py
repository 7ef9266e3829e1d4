"""Signups with a tracked link's click id: it gives the code within the program's
attribution window and the referral records it; a forged or expired one attributes
nothing; beside a code it must be of that code's link."""

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.domain.clicks import new_click_id
from tests.api.common import Headers
from tests.clocks import FixedClock

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"}


@pytest.fixture
def clock(services: Services) -> FixedClock:
    return FixedClock(services.clock.now())


@pytest.fixture
def client(services: Services, clock: FixedClock) -> TestClient:
    return TestClient(create_app(replace(services, clock=clock)), follow_redirects=False)


@pytest.fixture
def codes(client: TestClient, admin: Headers) -> None:
    """Alice and Carol refer in the default program, whose links land on example.com."""
    body = {"landing_url": "https://example.com/", "attribution_window_days": 7}
    assert client.patch("/v1/programs/default", json=body, headers=admin).status_code == 200
    for user, code in (("alice", "ALICE"), ("carol", "CAROL")):
        enrolled = client.post("/v1/referrers", json={"user_id": user, "code": code}, headers=admin)
        assert enrolled.status_code == 201


def click(client: TestClient, code: str) -> str:
    location = client.get(f"/l/{code}", headers=BROWSER).headers["location"]
    [click_id] = parse_qs(urlsplit(location).query)["click_id"]
    return click_id


def post(client: TestClient, headers: Headers, **body: Any) -> Any:
    return client.post("/v1/signups", json={"user_id": "bob", **body}, headers=headers)


def referrals(client: TestClient, admin: Headers) -> list[Any]:
    items: list[Any] = client.get("/v1/referrals", headers=admin).json()["items"]
    return items


@pytest.mark.usefixtures("codes")
def test_a_click_id_alone_gives_the_code_and_the_referral_records_it(
    client: TestClient, ingest: Headers
) -> None:
    click_id = click(client, "alice")
    response = post(client, ingest, click_id=click_id)
    assert response.status_code == 201, response.text
    referral = response.json()["referral"]
    assert (referral["code"], referral["referrer_id"], referral["click_id"]) == (
        "ALICE",
        "alice",
        click_id,
    )
    again = post(client, ingest, click_id=click_id)  # a replay answers the same
    assert (again.status_code, again.json()) == (200, response.json())


@pytest.mark.usefixtures("codes")
def test_a_click_id_beside_its_own_code_in_any_case_is_recorded(
    client: TestClient, ingest: Headers
) -> None:
    click_id = click(client, "ALICE")
    response = post(client, ingest, referral_code="alice", click_id=click_id)
    assert response.status_code == 201
    assert response.json()["referral"]["click_id"] == click_id


@pytest.mark.usefixtures("codes")
def test_a_click_id_of_another_referrers_link_is_a_409_naming_it(
    client: TestClient, ingest: Headers, admin: Headers
) -> None:
    response = post(client, ingest, referral_code="CAROL", click_id=click(client, "ALICE"))
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "click_mismatch"
    assert problem["errors"][0]["loc"] == ["click_id"]
    assert referrals(client, admin) == []  # nothing written


@pytest.mark.usefixtures("codes")
def test_a_forged_click_id_alone_is_404_and_writes_nothing(
    client: TestClient, ingest: Headers, admin: Headers
) -> None:
    response = post(client, ingest, click_id=new_click_id())
    assert response.status_code == 404
    assert response.json()["code"] == "click_not_found"
    assert response.json()["errors"][0]["loc"] == ["click_id"]
    assert referrals(client, admin) == []


@pytest.mark.usefixtures("codes")
def test_a_forged_click_id_beside_a_code_attributes_nothing_and_the_code_goes_on(
    client: TestClient, ingest: Headers
) -> None:
    response = post(client, ingest, referral_code="CAROL", click_id=new_click_id())
    assert response.status_code == 201
    referral = response.json()["referral"]
    assert (referral["referrer_id"], referral["click_id"]) == ("carol", None)


@pytest.mark.usefixtures("codes")
def test_a_click_older_than_the_programs_window_attributes_nothing(
    client: TestClient, ingest: Headers, clock: FixedClock
) -> None:
    click_id = click(client, "ALICE")
    clock.advance(days=7, seconds=1)  # the window is 7 days
    alone = post(client, ingest, click_id=click_id)
    assert (alone.status_code, alone.json()["code"]) == (404, "click_not_found")
    # Another referrer's code beside it: the expired click cannot conflict with it.
    beside = post(client, ingest, referral_code="CAROL", click_id=click_id)
    assert beside.status_code == 201
    assert beside.json()["referral"]["click_id"] is None


@pytest.mark.usefixtures("codes")
def test_a_click_on_the_last_day_of_the_window_is_credited(
    client: TestClient, ingest: Headers, clock: FixedClock
) -> None:
    click_id = click(client, "ALICE")
    clock.advance(days=7)
    assert post(client, ingest, click_id=click_id).json()["referral"]["click_id"] == click_id


@pytest.mark.usefixtures("codes")
@pytest.mark.parametrize(
    "body",
    [
        {},  # neither a code nor a click id
        {"click_id": "short"},
        {"click_id": "x" * 25},
        {"click_id": "a" * 23 + "!"},
        {"click_id": 12345},
        {"click_id": None},
    ],
)
def test_a_malformed_or_missing_click_id_is_a_400(
    client: TestClient, ingest: Headers, admin: Headers, body: dict[str, Any]
) -> None:
    response = post(client, ingest, **body)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert referrals(client, admin) == []


@pytest.mark.usefixtures("codes")
def test_the_legacy_signup_takes_a_click_id_beside_the_code(
    client: TestClient, ingest: Headers, admin: Headers
) -> None:
    click_id = click(client, "ALICE")
    body = {"userId": "bob", "referralCode": "ALICE", "clickId": click_id}
    response = client.post("/signup", json=body, headers=ingest)
    assert response.status_code == 200, response.text
    [referral] = referrals(client, admin)
    assert referral["click_id"] == click_id
    mismatch = {"userId": "dave", "referralCode": "CAROL", "clickId": click(client, "ALICE")}
    assert client.post("/signup", json=mismatch, headers=ingest).status_code == 409
