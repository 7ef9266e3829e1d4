"""Requests several API test modules make the same way."""

from typing import Any

from fastapi.testclient import TestClient

Headers = dict[str, str]


def signup(client: TestClient, headers: Headers, user: str, code: str, **extra: Any) -> Any:
    """`POST /v1/signups`, which must create the referral; its body's `referral`."""
    response = client.post(
        "/v1/signups", json={"user_id": user, "referral_code": code, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["referral"]
