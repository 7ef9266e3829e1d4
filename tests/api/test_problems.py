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


# Every route that reads a JSON body, with its path parameters filled in.
JSON_ROUTES = [
    "/signup",
    "/v1/referrers",
    "/v1/signups",
    "/v1/conversions",
    "/v1/payouts",
    "/v1/referrals/01NOSUCHREFERRAL0000000000/reverse",
    "/v1/reviews/01NOSUCHREFERRAL0000000000/approve",
    "/v1/reviews/01NOSUCHREFERRAL0000000000/reject",
    "/v1/referrers/alice/portal-link",
    "/v1/keys",
    "/v1/keys/01NOSUCHKEY000000000000000/revoke",
    "/v1/keys/01NOSUCHKEY000000000000000/rotate",
    "/v1/programs",
    "/v1/programs/default/rules",
    "/v1/programs/default",  # PATCH
    "/v1/programs/default/referrers",
    "/v1/programs/default/rules/simulate",
    "/v1/sales",
    "/v1/refunds",
    "/v1/sales/in_1/share/approve",
]
PATCHED = {"/v1/programs/default"}


def test_every_json_route_is_in_the_content_type_tests(client: TestClient) -> None:
    # A new JSON route must be added above, so the Content-Type rule is tested on it too.
    documented = {
        path
        for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        for operation in operations.values()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    filled = {
        path.replace("{referral_id}", "01NOSUCHREFERRAL0000000000")
        .replace("{user_id}", "alice")
        .replace("{key_id}", "01NOSUCHKEY000000000000000")
        .replace("{program_id}", "default")
        .replace("{external_id}", "in_1")
        .replace("{decision}", "approve")
        for path in documented
    }
    assert filled == set(JSON_ROUTES)


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("application/x-www-form-urlencoded", "it was application/x-www-form-urlencoded"),
        ("text/plain; charset=utf-8", "it was text/plain; charset=utf-8"),
        (None, "none was sent"),
    ],
)
def test_a_json_body_without_the_json_content_type_is_a_400_that_says_so(
    client: TestClient,
    admin: dict[str, str],
    path: str,
    content_type: str | None,
    named: str,
) -> None:
    # What `curl -d '{...}'` without -H 'Content-Type: application/json' sends.
    headers = {**admin, **({"Content-Type": content_type} if content_type else {})}
    method = "PATCH" if path in PATCHED else "POST"
    body = b'{"reason": "x", "user_id": "x"}'
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert "Content-Type: application/json" in problem["detail"] and named in problem["detail"]
    assert {"loc": ["header", "content-type"], "msg": problem["detail"]} in problem["errors"]


def test_a_signup_sent_as_a_form_writes_nothing(
    client: TestClient, admin: dict[str, str], vanity: None
) -> None:
    body = b'{"user_id": "bob", "referral_code": "ALICE-1"}'
    headers = {**admin, "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/v1/signups", content=body, headers=headers).status_code == 400
    assert client.get("/v1/referrals", headers=admin).json()["items"] == []


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_content_types_with_parameters_or_a_suffix_are_json(
    client: TestClient, admin: dict[str, str], vanity: None, content_type: str
) -> None:
    body = b'{"user_id": "bob", "referral_code": "ALICE-1"}'
    response = client.post(
        "/v1/signups", content=body, headers={**admin, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


def test_a_bad_json_body_with_the_json_content_type_names_the_field(
    client: TestClient, admin: dict[str, str]
) -> None:
    # The Content-Type message is for a body that was not declared JSON, not for bad fields.
    response = client.post("/v1/signups", json={"user_id": "bob"}, headers=admin)
    problem = response.json()
    assert (response.status_code, problem["detail"]) == (400, "the request is not valid")
    assert [e["loc"] for e in problem["errors"]] == [["body", "referral_code"]]
