import base64
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient


def test_errors_are_documented_as_problem_documents(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    signup = schema["paths"]["/v1/signups"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "422"):
        content = signup[status]["content"]
        assert list(content) == ["application/problem+json"], status
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}


def test_no_route_documents_fastapis_default_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    referrers = schema["paths"]["/v1/referrers"]["post"]["responses"]
    assert "422" not in referrers and "400" in referrers


# --- The document says what the server accepts (issue 22: schemathesis's
# positive_data_acceptance found each of these refused while the schema allowed it) ------


def _components(client: TestClient) -> Any:
    return client.get("/openapi.json").json()["components"]["schemas"]


def test_405_allows_every_method_of_the_path(client: TestClient) -> None:
    # GET and POST /v1/keys are two routes: Starlette's own Allow named the first one's.
    response = client.put("/v1/keys")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["code"] == "method_not_allowed"


def test_options_is_refused_with_every_method_of_the_path(client: TestClient) -> None:
    response = client.options("/v1/payouts")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("settings_overrides", [{"portal_link_ttl_seconds": 3600}])
def test_ttl_seconds_maximum_is_the_setting_the_app_runs_with(client: TestClient) -> None:
    ttl = _components(client)["PortalLinkRequest"]["properties"]["ttl_seconds"]
    assert [branch.get("maximum") for branch in ttl["anyOf"]] == [3600, None]


@pytest.mark.parametrize(("ttl", "status"), [(3600, 201), (3600.0, 201), (3601, 400)])
@pytest.mark.parametrize("settings_overrides", [{"portal_link_ttl_seconds": 3600}])
def test_ttl_seconds_is_taken_up_to_the_setting(
    client: TestClient, ingest: dict[str, str], alice_code: str, ttl: float, status: int
) -> None:
    response = client.post(
        "/v1/referrers/alice/portal-link", json={"ttl_seconds": ttl}, headers=ingest
    )
    assert response.status_code == status, response.text


def test_a_whole_number_sent_as_a_float_is_an_integer(
    client: TestClient, admin: dict[str, str]
) -> None:
    # JSON Schema's `integer` takes 3600.0, and so does the server now.
    body = {"role": "ingest", "expires_in_seconds": 3600.0}
    response = client.post("/v1/keys", json=body, headers=admin)
    assert response.status_code == 201, response.text
    conversion = {"user_id": "bob", "event": "purchase", "external_id": "o-1", "value_cents": 1e3}
    response = client.post("/v1/conversions", json=conversion, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["value_cents"] == 1000


@pytest.mark.parametrize("value", ["3600.5", '"3600"', "true", "1e400", "NaN"])
def test_an_integer_is_not_read_from_a_fraction_string_or_boolean(
    client: TestClient, admin: dict[str, str], value: str
) -> None:
    body = '{"grace_seconds": ' + value + "}"
    headers = {**admin, "Content-Type": "application/json"}
    response = client.post("/v1/keys/first-admin/rotate", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["body", "grace_seconds"]


def test_ip_is_documented_as_an_ipv4_or_ipv6_address(client: TestClient) -> None:
    # `format: ip` is no JSON Schema format: tools took any string of 2-45 characters.
    ip = _components(client)["EnrollRequest"]["properties"]["ip"]["anyOf"][0]
    formats = [branch["format"] for branch in ip["anyOf"]]
    assert formats == ["ipv4", "ipv6"] and ip["maxLength"] == 45


@pytest.mark.parametrize(("ip", "status"), [("2001:db8::1", 201), ("fe80::1%eth0", 400)])
def test_ip_is_an_address_without_a_zone_index(
    client: TestClient, ingest: dict[str, str], ip: str, status: int
) -> None:
    response = client.post("/v1/referrers", json={"user_id": "dave", "ip": ip}, headers=ingest)
    assert response.status_code == status, response.text


def test_email_is_documented_as_an_internationalised_address(client: TestClient) -> None:
    email = _components(client)["EnrollRequest"]["properties"]["email"]["anyOf"][0]
    assert email["format"] == "idn-email"


@pytest.mark.parametrize(
    ("email", "status"),
    [("tess@shop.test", 201), ("josé@example.com", 201), ("tess@printer.local", 400)],
)
def test_email_under_test_is_taken_special_use_domains_are_not(
    client: TestClient, ingest: dict[str, str], email: str, status: int
) -> None:
    body = {"user_id": "tess", "email": email}
    response = client.post("/v1/referrers", json=body, headers=ingest)
    assert response.status_code == status, response.text


def test_cursor_length_is_what_a_position_encodes_to(
    client: TestClient, admin: dict[str, str]
) -> None:
    # A position is at most 64 ASCII characters: 86 in unpadded base64, documented so.
    params = client.get("/openapi.json").json()["paths"]["/v1/referrals"]["get"]["parameters"]
    (cursor,) = [p for p in params if p["name"] == "cursor"]
    assert cursor["schema"]["anyOf"][0]["maxLength"] == 86
    longest = base64.urlsafe_b64encode(b"Z" * 64).decode().rstrip("=")
    assert len(longest) == 86
    ok = client.get("/v1/referrals", params={"cursor": longest}, headers=admin)
    assert ok.status_code == 200, ok.text
    refused = client.get("/v1/referrals", params={"cursor": longest + "A"}, headers=admin)
    assert refused.status_code == 400


def test_every_post_documents_its_body_cap_and_full_storage(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    posts = [methods["post"]["responses"] for methods in paths.values() if "post" in methods]
    assert posts
    for responses in posts:
        assert {"413", "503"} <= responses.keys()
        assert list(responses["413"]["content"]) == ["application/problem+json"]


@pytest.mark.parametrize(
    ("name", "status"), [(" ", 400), ("\u3000\u00a0", 400), (" ok\u2003", 201)]
)
def test_a_name_is_more_than_whitespace_in_the_schema_as_on_the_server(
    client: TestClient, admin: dict[str, str], name: str, status: int
) -> None:
    # The server strips names and reasons; the patterns say so (they said any text).
    schemas = _components(client)
    patterns = [
        schemas["KeyCreate"]["properties"]["name"]["anyOf"][0]["pattern"],
        schemas["ReasonRequired"]["properties"]["reason"]["pattern"],
    ]
    assert all(bool(re.search(pattern, name)) is (status == 201) for pattern in patterns)
    response = client.post("/v1/keys", json={"role": "ingest", "name": name}, headers=admin)
    assert response.status_code == status, response.text
