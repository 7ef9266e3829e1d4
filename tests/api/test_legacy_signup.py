"""POST /signup keeps the original API's request and response shape."""

from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.services.keys import create_key
from referrals.services.referrers import enroll


def test_signup_answers_like_the_original(
    client: TestClient, ingest: dict[str, str], alice_code: str
) -> None:
    body = {"userId": "bob", "referralCode": alice_code, "email": "bob@example.com"}
    response = client.post("/signup", json=body, headers=ingest)
    assert response.status_code == 200
    data = response.json()
    assert data["message"] == "Signup successful"
    assert data["rewardAmount"] == 10 and isinstance(data["rewardAmount"], int)
    assert data["rewardCents"] == 1000
    assert data["referralCount"] == 1
    assert len(data["referralId"]) == 26
    assert len(data["refereeCode"]) == 8


def test_reward_amount_is_dollars_of_the_tier(
    client: TestClient, ingest: dict[str, str], alice_code: str
) -> None:
    amounts = [
        client.post(
            "/signup", json={"userId": f"u{i}", "referralCode": alice_code}, headers=ingest
        ).json()["rewardAmount"]
        for i in range(5)
    ]
    assert amounts == [10, 10, 10, 10, 15]


def test_fractional_dollars_are_a_json_number() -> None:
    svc = build(Settings(database_url="memory://", tiers="1:1250"))
    key, _ = create_key(svc.store, svc.clock, Role.INGEST)
    code = enroll(svc.store, svc.clock, "alice").referrer.code
    response = TestClient(create_app(svc)).post(
        "/signup",
        json={"userId": "bob", "referralCode": code},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.text.count('"rewardAmount":12.5') == 1


def test_missing_field_is_a_400_problem(client: TestClient, ingest: dict[str, str]) -> None:
    response = client.post("/signup", json={"userId": "bob"}, headers=ingest)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


def test_unknown_code_is_404(client: TestClient, ingest: dict[str, str], alice_code: str) -> None:
    response = client.post(
        "/signup", json={"userId": "bob", "referralCode": "NOPE1"}, headers=ingest
    )
    assert response.status_code == 404
    assert response.json()["code"] == "code_not_found"
