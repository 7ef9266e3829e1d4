"""Bad input: a 4xx problem response, never a 5xx, and nothing written."""

import pytest
from fastapi.testclient import TestClient

BAD_SIGNUPS = [
    {},
    {"user_id": "bob"},
    {"user_id": 123, "referral_code": "ALICE-1"},
    {"user_id": "bob", "referral_code": ["ALICE-1"]},
    {"user_id": "", "referral_code": "ALICE-1"},
    {"user_id": "x" * 129, "referral_code": "ALICE-1"},
    {"user_id": "bob smith", "referral_code": "ALICE-1"},
    {"user_id": "bob", "referral_code": "x" * 33},
    {"user_id": "bob", "referral_code": "ALICE-1", "email": "not-an-email"},
    {"user_id": "bob", "referral_code": "ALICE-1", "email": "a" * 250 + "@x.com"},
    {"user_id": "bob", "referral_code": "ALICE-1", "admin": True},
    {"user_id": "bob", "referral_code": "ALICE-1", "signed_up_at": "yesterday"},
    {"user_id": None, "referral_code": "ALICE-1"},
]


@pytest.fixture
def vanity(client: TestClient, admin: dict[str, str]) -> None:
    body = {"user_id": "alice", "code": "ALICE-1"}
    assert client.post("/v1/referrers", json=body, headers=admin).status_code == 201


@pytest.mark.parametrize("body", BAD_SIGNUPS)
def test_bad_signup_is_400_and_writes_nothing(
    client: TestClient, admin: dict[str, str], vanity: None, body: dict[str, object]
) -> None:
    response = client.post("/v1/signups", json=body, headers=admin)
    assert response.status_code == 400
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "validation_error" and problem["status"] == 400
    assert set(problem) >= {"type", "title", "status", "detail", "code"}
    assert client.get("/v1/referrals", headers=admin).json()["items"] == []


@pytest.mark.parametrize(
    "raw", [b"{bad json", b"", b"[]", b"null", b'"text"', b"[" * 20000 + b"]" * 20000]
)
def test_malformed_json_is_400(client: TestClient, admin: dict[str, str], raw: bytes) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = client.post("/v1/signups", content=raw, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_huge_body_is_413(client: TestClient, admin: dict[str, str], vanity: None) -> None:
    body = {"user_id": "bob", "referral_code": "ALICE-1", "email": "a" * 70_000}
    response = client.post("/v1/signups", json=body, headers=admin)
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert client.get("/v1/referrals", headers=admin).json()["items"] == []


def test_chunked_huge_body_is_413(client: TestClient, admin: dict[str, str]) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 1024

    headers = {**admin, "Content-Type": "application/json"}
    response = client.post("/v1/signups", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    response = client.delete("/v1/signups")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_bad_user_id_in_path_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get("/v1/referrers/" + "x" * 200, headers=admin)
    assert response.status_code == 400


def test_405_names_the_allowed_methods(client: TestClient) -> None:
    response = client.request("TRACE", "/v1/signups")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
