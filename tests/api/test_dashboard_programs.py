"""The dashboard's programs page: every program, the version in force and those to come."""

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.services.keys import create_key

Headers = dict[str, str]


def test_the_programs_page_shows_each_version_and_which_is_in_force(
    client: TestClient, services: Services, admin: Headers
) -> None:
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    assert client.post("/dashboard/login", data={"key": plaintext}).is_success
    partners = {
        "id": "partners",
        "name": "Partner program",
        "currency": "USD",
        "rules": {"tiers": [{"threshold": 1, "reward_cents": 2000}], "hold_days": 14},
    }
    assert client.post("/v1/programs", json=partners, headers=admin).status_code == 201
    later = {
        "effective_from": datetime(2099, 1, 1, tzinfo=UTC).isoformat(),
        "rules": {
            "tiers": [{"threshold": 1, "reward_cents": 2500}],
            "checks": {"velocity": "shadow"},
        },
    }
    assert client.post("/v1/programs/partners/rules", json=later, headers=admin).status_code == 201

    page = client.get("/dashboard/programs")
    assert page.status_code == 200
    assert 'aria-current="page"' in page.text and ">Programs</a>" in page.text
    sections = dict(re.findall(r'data-program="([a-z0-9-]+)">(.*?)</section>', page.text, re.S))
    assert list(sections) == ["default", "partners"]
    assert "Default program" in sections["default"] and "1: 10.00, 5: 15.00" in sections["default"]
    rows = dict(re.findall(r'data-version="(\d+)">(.*?)</tr>', sections["partners"], re.S))
    assert "in force" in rows["1"] and "1: 20.00" in rows["1"] and ">14<" in rows["1"]
    assert "scheduled" in rows["2"] and "2099-01-01 00:00:00 UTC" in rows["2"]
    assert "velocity: shadow" in rows["2"] and "velocity: hold" in rows["1"]
