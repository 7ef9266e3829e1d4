import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from referrals.api.app import create_app
from referrals.api.auth import KeyCache
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import ApiKey, Role, new_id
from referrals.services.keys import hash_key, list_keys, revoke_key

ADMIN_ONLY = [
    ("GET", "/v1/referrers/alice"),
    ("GET", "/v1/referrers/alice/referrals"),
    ("GET", "/v1/referrals"),
]
INGEST_ALLOWED = [("POST", "/v1/referrers"), ("POST", "/v1/signups"), ("POST", "/signup")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY + INGEST_ALLOWED)
def test_no_key_is_401(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Bearer rk_not-a-real-key", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "rk_x"]
)
def test_bad_key_is_401(client: TestClient, header: str) -> None:
    response = client.get("/v1/referrals", headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_ingest_key_on_admin_route_is_403(
    client: TestClient, ingest: dict[str, str], method: str, path: str
) -> None:
    response = client.request(method, path, headers=ingest)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_ingest_key_may_enroll(client: TestClient, ingest: dict[str, str]) -> None:
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=ingest).status_code == 201


@pytest.mark.parametrize("path", ["/healthz", "/docs", "/openapi.json"])
def test_public_routes_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_openapi_declares_bearer_auth(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    # A configured secret: building reads nothing from the database (which has no tables).
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/gone/api.db", secret_key="api-test-secret-" + "0" * 20
    )
    services = build(settings)
    (tmp_path / "gone").rmdir()  # before the first connection: SQLite cannot open the file
    response = TestClient(create_app(services)).get("/healthz")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_a_verified_key_is_served_from_the_cache_until_it_expires() -> None:
    key = ApiKey("k" * 26, Role.INGEST, "ab" * 32, datetime(2026, 1, 1, tzinfo=UTC))
    cache = KeyCache(ttl=60)
    cache.put(key.key_hash, key)
    assert cache.get(key.key_hash) == key
    assert cache.get("cd" * 32) is None
    expired = KeyCache(ttl=0)
    expired.put(key.key_hash, key)
    assert expired.get(key.key_hash) is None


def test_a_verified_key_is_not_read_again_while_cached(
    services: Services, ingest: dict[str, str]
) -> None:
    app = create_app(services)
    app.state.key_cache = KeyCache(ttl=60)  # long: the test must not race the clock
    client = TestClient(app)
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=ingest).status_code == 201
    with services.store.writer.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DELETE FROM api_keys"))  # the key is gone from the database
    assert client.post("/v1/referrers", json={"user_id": "b"}, headers=ingest).status_code == 201


def test_a_key_revoked_by_another_server_is_refused_once_its_cache_entry_ends(
    services: Services, ingest: dict[str, str]
) -> None:
    app = create_app(services)
    client = TestClient(app)
    assert app.state.key_cache.ttl <= 0.5  # so that a revocation holds within a second
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=ingest).status_code == 201
    (key,) = [k for k in list_keys(services.store) if k.role is Role.INGEST]
    revoke_key(services.store, services.clock, key.id)  # as another server would: no cache
    time.sleep(app.state.key_cache.ttl)
    response = client.post("/v1/referrers", json={"user_id": "b"}, headers=ingest)
    assert response.status_code == 401 and response.json()["detail"] == "the API key is revoked"


def test_a_refused_key_is_not_cached(services: Services) -> None:
    client = TestClient(create_app(services))
    plaintext = "rk_" + "k" * 43
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=headers).status_code == 401
    with services.store.unit_of_work() as uow:  # the same key becomes valid
        key = ApiKey(
            new_id(datetime.now(UTC)), Role.INGEST, hash_key(plaintext), services.clock.now()
        )
        uow.api_keys.add(key)
        uow.commit()
    assert client.post("/v1/referrers", json={"user_id": "a"}, headers=headers).status_code == 201
