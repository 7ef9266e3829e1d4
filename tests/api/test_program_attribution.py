"""A program's landing URL and attribution settings over HTTP: created, shown, changed
and removed; a bad value is a 400 naming its field, and nothing is written."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.common import Headers

PARTNERS = {"id": "partners", "name": "Partners"}


def test_a_program_is_created_with_its_attribution_settings(
    client: TestClient, admin: Headers
) -> None:
    body = PARTNERS | {
        "landing_url": "https://partners.example/join?lang=en",
        "attribution_window_days": 90,
        "attribution": "last",
    }
    created = client.post("/v1/programs", json=body, headers=admin)
    assert created.status_code == 201, created.text
    shown = client.get("/v1/programs/partners", headers=admin).json()
    for answer in (created.json(), shown):
        assert (
            answer["landing_url"],
            answer["attribution_window_days"],
            answer["attribution"],
        ) == ("https://partners.example/join?lang=en", 90, "last")


def test_without_them_a_program_has_no_landing_url_and_the_defaults(
    client: TestClient, admin: Headers
) -> None:
    answer = client.post("/v1/programs", json=PARTNERS, headers=admin).json()
    assert (answer["landing_url"], answer["attribution_window_days"], answer["attribution"]) == (
        None,
        30,
        "first",
    )
    default = client.get("/v1/programs/default", headers=admin).json()
    assert (default["landing_url"], default["attribution_window_days"]) == (None, 30)


def test_a_change_sets_only_what_it_sends_and_null_removes_the_landing_url(
    client: TestClient, admin: Headers
) -> None:
    url = "http://localhost:3000/landing"
    first = client.patch("/v1/programs/default", json={"landing_url": url}, headers=admin)
    assert first.json()["landing_url"] == url
    window = client.patch(
        "/v1/programs/default", json={"attribution_window_days": 1}, headers=admin
    ).json()
    assert (window["landing_url"], window["attribution_window_days"]) == (url, 1)
    removed = client.patch("/v1/programs/default", json={"landing_url": None}, headers=admin)
    assert removed.json()["landing_url"] is None
    assert removed.json()["attribution_window_days"] == 1


BAD: list[tuple[str, Any]] = [
    ("landing_url", "ftp://example.com/"),
    ("landing_url", "https://"),
    ("landing_url", "example.com/welcome"),
    ("landing_url", "https://example.com/a b"),
    ("landing_url", "https://example.com/\r\nSet-Cookie: x=1"),
    ("landing_url", "https://example.com/" + "x" * 500),
    ("landing_url", 42),
    ("attribution_window_days", 0),
    ("attribution_window_days", 366),
    ("attribution_window_days", "30"),
    ("attribution_window_days", 1.5),
    ("attribution_window_days", True),
    ("attribution", "middle"),
    ("attribution", None),
]


@pytest.mark.parametrize(("field", "value"), BAD)
def test_a_bad_setting_on_create_is_a_400_naming_it(
    client: TestClient, admin: Headers, field: str, value: Any
) -> None:
    response = client.post("/v1/programs", json=PARTNERS | {field: value}, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert field in {part for error in response.json()["errors"] for part in error["loc"]}
    assert client.get("/v1/programs/partners", headers=admin).status_code == 404


@pytest.mark.parametrize(("field", "value"), [b for b in BAD if b[1] is not None])
def test_a_bad_setting_on_change_is_a_400_naming_it_and_changes_nothing(
    client: TestClient, admin: Headers, field: str, value: Any
) -> None:
    before = client.get("/v1/programs/default", headers=admin).json()
    response = client.patch("/v1/programs/default", json={field: value}, headers=admin)
    assert response.status_code == 400, response.text
    assert field in {part for error in response.json()["errors"] for part in error["loc"]}
    assert client.get("/v1/programs/default", headers=admin).json() == before
