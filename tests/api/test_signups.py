from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient


def signup(client: TestClient, headers: dict[str, str], user_id: str, code: str, **extra: object):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/signups", json={"user_id": user_id, "referral_code": code, **extra}, headers=headers
    )


def test_signup_returns_referral_referrer_and_referee_code(
    client: TestClient, ingest: dict[str, str], alice_code: str
) -> None:
    response = signup(client, ingest, "bob", alice_code, email="bob@example.com")
    assert response.status_code == 201
    body = response.json()
    assert body["referral"]["ordinal"] == 1
    assert body["referral"]["reward_cents"] == 1000
    assert body["referral"]["status"] == "pending"
    assert body["referral"]["payout_period"] is None
    assert body["referrer"] == {"user_id": "alice", "referral_count": 1}
    assert len(body["referee_code"]) == 8


def test_replay_is_200_with_the_same_body(
    client: TestClient, ingest: dict[str, str], alice_code: str
) -> None:
    first = signup(client, ingest, "bob", alice_code)
    signup(client, ingest, "carol", alice_code)
    again = signup(client, ingest, "bob", alice_code.lower())
    assert again.status_code == 200
    assert again.json() == first.json()


def test_same_user_with_another_code_is_409(
    client: TestClient, ingest: dict[str, str], alice_code: str
) -> None:
    other = client.post("/v1/referrers", json={"user_id": "dave"}, headers=ingest).json()["code"]
    signup(client, ingest, "bob", alice_code)
    response = signup(client, ingest, "bob", other)
    assert response.status_code == 409
    assert response.json()["code"] == "already_referred"


def test_self_referral_is_422(client: TestClient, ingest: dict[str, str], alice_code: str) -> None:
    by_id = signup(client, ingest, "alice", alice_code)
    by_email = signup(client, ingest, "alice2", alice_code, email="ALICE@example.com")
    assert by_id.status_code == by_email.status_code == 422
    assert by_id.json()["code"] == by_email.json()["code"] == "self_referral"


def test_unknown_code_is_404(client: TestClient, ingest: dict[str, str], alice_code: str) -> None:
    response = signup(client, ingest, "bob", "NOPE1")
    assert response.status_code == 404
    assert response.json()["code"] == "code_not_found"


def test_admin_imports_a_historical_signup(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    response = signup(client, admin, "bob", alice_code, signed_up_at="2025-06-30T23:59:59.5Z")
    assert response.status_code == 201
    assert response.json()["referral"]["created_at"] == "2025-06-30T23:59:59.500000Z"


def test_ingest_key_may_not_import(
    client: TestClient, ingest: dict[str, str], admin: dict[str, str], alice_code: str
) -> None:
    response = signup(client, ingest, "bob", alice_code, signed_up_at="2025-06-30T12:00:00Z")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert client.get("/v1/referrers/alice", headers=admin).json()["referral_count"] == 0


def test_import_in_the_future_is_400(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = signup(client, admin, "bob", alice_code, signed_up_at=future)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_import_without_timezone_is_400(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    response = signup(client, admin, "bob", alice_code, signed_up_at="2025-06-30T12:00:00")
    assert response.status_code == 400


def test_import_replay_answers_the_same_body_whatever_the_offset(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    first = signup(client, admin, "bob", alice_code, signed_up_at="2025-01-01T10:00:00+02:00")
    again = signup(client, admin, "bob", alice_code, signed_up_at="2025-01-01T10:00:00+02:00")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["referral"]["created_at"] == "2025-01-01T08:00:00Z"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z"])
def test_import_before_1970_is_400(
    client: TestClient, admin: dict[str, str], alice_code: str, moment: str
) -> None:
    response = signup(client, admin, "bob", alice_code, signed_up_at=moment)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
