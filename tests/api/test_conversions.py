"""POST /v1/conversions, in a program that pays on conversion."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

Headers = dict[str, str]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "reward_trigger": "conversion",
        "conversion_event": "purchase",
        "conversion_min_cents": 1000,
        "referee_reward_cents": 500,
    }


@pytest.fixture
def awaiting(client: TestClient, ingest: Headers) -> Any:
    code = client.post("/v1/referrers", json={"user_id": "alice"}, headers=ingest).json()["code"]
    signup = client.post(
        "/v1/signups", json={"user_id": "bob", "referral_code": code}, headers=ingest
    )
    referral = signup.json()["referral"]
    assert referral["status"] == "awaiting"
    return referral


def convert(client: TestClient, headers: Headers, **body: Any) -> Any:
    return client.post("/v1/conversions", json={"user_id": "bob", **body}, headers=headers)


def test_a_qualifying_conversion_earns_the_referral_its_reward(
    client: TestClient, ingest: Headers, awaiting: Any
) -> None:
    response = convert(client, ingest, event="purchase", value_cents=4999, external_id="o-1")
    assert response.status_code == 201
    body = response.json()
    assert (body["external_id"], body["event"], body["value_cents"]) == ("o-1", "purchase", 4999)
    assert body["referral"]["id"] == awaiting["id"]
    assert body["referral"]["status"] == "pending"
    assert body["referral"]["payable_at"] == body["created_at"]


def test_a_replay_is_200_with_the_same_body(
    client: TestClient, ingest: Headers, awaiting: Any
) -> None:
    first = convert(client, ingest, event="purchase", value_cents=1000, external_id="o-1")
    again = convert(client, ingest, event="purchase", value_cents=1000, external_id="o-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = convert(client, ingest, event="purchase", value_cents=2000, external_id="o-1")
    assert (other.status_code, other.json()["code"]) == (409, "conversion_conflict")


def test_a_non_qualifying_event_is_recorded_and_earns_nothing(
    client: TestClient, ingest: Headers, awaiting: Any
) -> None:
    small = convert(client, ingest, event="purchase", value_cents=999, external_id="o-1")
    assert (small.status_code, small.json()["referral"]) == (201, None)
    later = convert(client, ingest, event="purchase", value_cents=1000, external_id="o-2")
    assert later.json()["referral"]["status"] == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {"event": "purchase"},
        {"event": "purchase", "external_id": "o-1", "value_cents": -1},
        {"event": "purchase", "external_id": "o-1", "value_cents": "100"},
        {"event": "purchase", "external_id": "o-1", "value_cents": 1.5},
        {"event": "", "external_id": "o-1"},
        {"event": "a b", "external_id": "o-1"},
        {"event": "purchase", "external_id": "x" * 129},
        {"event": "purchase", "external_id": "o-1", "extra": 1},
    ],
)
def test_bad_conversions_are_400_and_write_nothing(
    client: TestClient, ingest: Headers, awaiting: Any, body: dict[str, Any]
) -> None:
    response = convert(client, ingest, **body)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    replay = convert(client, ingest, event="purchase", value_cents=1000, external_id="o-1")
    assert replay.status_code == 201  # the id was not taken by the refused request


def test_conversions_need_a_key(client: TestClient) -> None:
    response = client.post(
        "/v1/conversions", json={"user_id": "bob", "event": "purchase", "external_id": "o"}
    )
    assert response.status_code == 401
