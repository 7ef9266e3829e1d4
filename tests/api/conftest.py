from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.api.common import signup


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module needs changed (override this fixture)."""
    return {}


@pytest.fixture
def services(tmp_path: Path, settings_overrides: dict[str, Any]) -> Iterator[Services]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/api.db",
        reports_url=str(tmp_path),
        **settings_overrides,
    )
    svc = build(settings, migrate=True)
    yield svc
    svc.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def client(services: Services) -> TestClient:
    return TestClient(create_app(services))


def _headers(services: Services, role: Role) -> dict[str, str]:
    plaintext, _ = create_key(services.store, services.clock, role)
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def admin(services: Services) -> dict[str, str]:
    return _headers(services, Role.ADMIN)


@pytest.fixture
def ingest(services: Services) -> dict[str, str]:
    return _headers(services, Role.INGEST)


@pytest.fixture
def alice_code(client: TestClient, admin: dict[str, str]) -> str:
    response = client.post(
        "/v1/referrers", json={"user_id": "alice", "email": "alice@example.com"}, headers=admin
    )
    assert response.status_code == 201
    code: str = response.json()["code"]
    return code


@pytest.fixture
def held(client: TestClient, ingest: dict[str, str], alice_code: str) -> Any:
    """A reward held for review: its referee signed up with a disposable address."""
    referral = signup(client, ingest, "bob", alice_code, email="bob@mailinator.com")
    assert referral["status"] == "held"
    return referral
