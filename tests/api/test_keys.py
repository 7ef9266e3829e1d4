"""API keys over HTTP: list, create, revoke, rotate (admin only, audited), and expiry."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.services.keys import create_key, find_key
from tests.clocks import FixedClock

Headers = dict[str, str]
KEY_FIELDS = {
    "id",
    "name",
    "role",
    "state",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
}


def bearer(secret: str) -> Headers:
    return {"Authorization": f"Bearer {secret}"}


def actor_of(admin: Headers, services: Services) -> str:
    """The id of the admin key in `admin`."""
    key = find_key(services.store, admin["Authorization"].removeprefix("Bearer "))
    assert key is not None
    return key.id


def audit(client: TestClient, admin: Headers) -> list[tuple[str, str, str, Any]]:
    items = client.get("/v1/audit", headers=admin).json()["items"]
    return [(e["actor"], e["action"], e["target"], e["reason"]) for e in items]


def new_key(client: TestClient, admin: Headers, **body: Any) -> Any:
    response = client.post("/v1/keys", json={"role": "ingest", **body}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("POST", "/v1/keys/first-admin/revoke"),
        ("POST", "/v1/keys/first-admin/rotate"),
    ],
)
def test_keys_are_for_admins_only(
    client: TestClient, ingest: Headers, method: str, path: str
) -> None:
    assert client.request(method, path, json={"role": "admin"}).status_code == 401
    response = client.request(method, path, json={"role": "admin"}, headers=ingest)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_a_key_made_over_http_works_and_is_audited_as_its_maker(
    client: TestClient, services: Services, admin: Headers
) -> None:
    made = new_key(client, admin, name="checkout backend", expires_in_seconds=86400)
    assert set(made) == KEY_FIELDS | {"key"}
    assert (made["role"], made["name"], made["state"]) == ("ingest", "checkout backend", "active")
    assert made["expires_at"] is not None and made["key"].startswith("rk_")
    response = client.post("/v1/referrers", json={"user_id": "a"}, headers=bearer(made["key"]))
    assert response.status_code == 201
    actor, action, target, reason = audit(client, admin)[0]
    assert (actor, action, target) == (actor_of(admin, services), "key.create", f"key:{made['id']}")
    assert reason.startswith("role ingest, name 'checkout backend', expires ")


def test_the_list_shows_every_key_and_never_a_secret(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    made = new_key(client, admin, name="b")
    client.post(f"/v1/keys/{made['id']}/revoke", headers=admin)
    response = client.get("/v1/keys", headers=admin)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["role"] for item in items] == ["admin", "ingest", "ingest"]  # oldest first
    assert all(set(item) == KEY_FIELDS for item in items)
    assert [i["state"] for i in items] == ["active", "active", "revoked"]
    assert items[0]["last_used_at"] is not None  # this very request used it
    assert "rk_" not in response.text and "key_hash" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "root"},
        {"role": "ingest", "name": ""},
        {"role": "ingest", "name": "x" * 65},
        {"role": "ingest", "name": "a\nb"},
        {"role": "ingest", "name": 7},
        {"role": "ingest", "expires_in_seconds": 59},
        {"role": "ingest", "expires_in_seconds": "3600"},
        {"role": "ingest", "secret": "rk_mine"},
    ],
)
def test_a_bad_key_request_is_a_400_and_makes_nothing(
    client: TestClient, admin: Headers, body: dict[str, Any]
) -> None:
    response = client.post("/v1/keys", json=body, headers=admin)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert len(client.get("/v1/keys", headers=admin).json()["items"]) == 1


def test_a_revoked_key_is_refused_at_once_and_the_revocation_audited(
    client: TestClient, services: Services, admin: Headers
) -> None:
    made = new_key(client, admin)
    headers = bearer(made["key"])
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=headers).status_code == 201
    response = client.post(
        f"/v1/keys/{made['id']}/revoke", json={"reason": "leaked in a build log"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["state"] == "revoked" and response.json()["revoked_at"]
    refused = client.post("/v1/referrers", json={"user_id": "b"}, headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "the API key is revoked"
    assert audit(client, admin)[0] == (
        actor_of(admin, services),
        "key.revoke",
        f"key:{made['id']}",
        "leaked in a build log",
    )


def test_revoking_again_or_an_unknown_key(client: TestClient, admin: Headers) -> None:
    made = new_key(client, admin)
    first = client.post(f"/v1/keys/{made['id']}/revoke", headers=admin).json()
    again = client.post(f"/v1/keys/{made['id']}/revoke", headers=admin)
    assert again.status_code == 200 and again.json() == first
    assert [a for _, a, _, _ in audit(client, admin)].count("key.revoke") == 1
    unknown = client.post("/v1/keys/01NOSUCHKEY000000000000000/revoke", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    malformed = client.post("/v1/keys/not-a-key/revoke", headers=admin)
    assert malformed.status_code == 400


def test_an_admin_may_revoke_its_own_key(client: TestClient, admin: Headers) -> None:
    own = client.get("/v1/keys", headers=admin).json()["items"][0]["id"]
    assert client.post(f"/v1/keys/{own}/revoke", headers=admin).status_code == 200
    assert client.get("/v1/keys", headers=admin).status_code == 401


def test_a_rotated_key_works_beside_the_new_one_for_its_grace_period(
    client: TestClient, services: Services, admin: Headers
) -> None:
    made = new_key(client, admin, name="worker")
    response = client.post(
        f"/v1/keys/{made['id']}/rotate", json={"grace_seconds": 600}, headers=admin
    )
    assert response.status_code == 201
    rotated = response.json()
    assert set(rotated) == KEY_FIELDS | {"key", "replaces"}
    assert (rotated["name"], rotated["role"], rotated["expires_at"]) == ("worker", "ingest", None)
    assert rotated["replaces"]["id"] == made["id"] and rotated["replaces"]["expires_at"]
    for secret in (made["key"], rotated["key"]):
        body = {"user_id": f"u{secret[-6:]}"}
        assert client.post("/v1/referrers", json=body, headers=bearer(secret)).status_code == 201
    actions = [(a, t) for _, a, t, _ in audit(client, admin)[:2]]
    assert sorted(actions) == [
        ("key.create", f"key:{rotated['id']}"),
        ("key.rotate", f"key:{made['id']}"),
    ]


def test_a_rotation_with_no_grace_and_its_defaults(client: TestClient, admin: Headers) -> None:
    made = new_key(client, admin)
    rotated = client.post(
        f"/v1/keys/{made['id']}/rotate",
        json={"grace_seconds": 0, "expires_in_seconds": 3600},
        headers=admin,
    ).json()
    assert rotated["expires_at"] is not None and rotated["replaces"]["state"] == "expired"
    refused = client.post("/v1/referrers", json={"user_id": "a"}, headers=bearer(made["key"]))
    assert refused.status_code == 401 and refused.json()["detail"] == "the API key is expired"
    default = client.post(f"/v1/keys/{rotated['id']}/rotate", headers=admin)  # no body: 1 hour
    assert default.status_code == 201 and default.json()["replaces"]["state"] == "active"


@pytest.mark.parametrize("body", [{"grace_seconds": -1}, {"grace_seconds": 2_592_001}, {"x": 1}])
def test_a_bad_rotation_is_a_400(client: TestClient, admin: Headers, body: dict[str, Any]) -> None:
    made = new_key(client, admin)
    response = client.post(f"/v1/keys/{made['id']}/rotate", json=body, headers=admin)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


def test_a_revoked_key_cannot_be_rotated(client: TestClient, admin: Headers) -> None:
    made = new_key(client, admin)
    client.post(f"/v1/keys/{made['id']}/revoke", headers=admin)
    response = client.post(f"/v1/keys/{made['id']}/rotate", headers=admin)
    assert response.status_code == 409 and response.json()["code"] == "key_not_active"


def test_a_key_stops_working_when_it_expires(services: Services) -> None:
    clock = FixedClock()
    client = TestClient(create_app(replace(services, clock=clock)))
    secret, _ = create_key(services.store, clock, Role.INGEST, expires_in=timedelta(minutes=2))
    headers = bearer(secret)
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=headers).status_code == 201
    clock.advance(minutes=2)  # the key is cached: its expiry is checked on the cached copy
    refused = client.post("/v1/referrers", json={"user_id": "b"}, headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "the API key is expired"


def test_the_last_use_is_recorded_once_a_minute(services: Services) -> None:
    clock = FixedClock()
    client = TestClient(create_app(replace(services, clock=clock)))
    secret, key = create_key(services.store, clock, Role.ADMIN)
    for _ in range(3):
        assert client.get("/v1/keys", headers=bearer(secret)).status_code == 200
    first = client.get("/v1/keys", headers=bearer(secret)).json()["items"][0]["last_used_at"]
    clock.advance(seconds=59)
    client.get("/v1/keys", headers=bearer(secret))
    assert (
        client.get("/v1/keys", headers=bearer(secret)).json()["items"][0]["last_used_at"] == first
    )
    clock.advance(seconds=1)
    client.get("/v1/keys", headers=bearer(secret))
    items = client.get("/v1/keys", headers=bearer(secret)).json()["items"]
    assert items[0]["id"] == key.id and items[0]["last_used_at"] != first
