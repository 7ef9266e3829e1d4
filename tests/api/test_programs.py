"""Programs as data over HTTP: the default program from the settings, new programs,
scheduled rule versions that price only what is earned after them, pause, shadow checks."""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services, build, build_store
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.api.common import Headers, signup
from tests.clocks import FixedClock

PARTNERS = {
    "id": "partners",
    "name": "Partner program",
    "currency": "USD",
    "share_url_template": "https://example.com/join?ref={code}",
    "rules": {"tiers": [{"threshold": 1, "reward_cents": 500}], "hold_days": 7},
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"tiers": "1:1000,3:1500", "hold_days": 2, "check_same_device": False}


@pytest.fixture
def clock(services: Services) -> FixedClock:
    return FixedClock(services.clock.now())


@pytest.fixture
def client(services: Services, clock: FixedClock) -> TestClient:
    return TestClient(create_app(replace(services, clock=clock)))


def rules(cents: int, **more: Any) -> dict[str, Any]:
    return {"tiers": [{"threshold": 1, "reward_cents": cents}], **more}


def schedule(client: TestClient, admin: Headers, at: str | None, body: dict[str, Any]) -> Any:
    payload = {"rules": body} | ({"effective_from": at} if at else {})
    return client.post("/v1/programs/default/rules", json=payload, headers=admin)


def detail(client: TestClient, admin: Headers, referral_id: str) -> Any:
    response = client.get(f"/v1/referrals/{referral_id}", headers=admin)
    assert response.status_code == 200
    return response.json()


def test_the_default_program_is_built_from_the_settings(client: TestClient, admin: Headers) -> None:
    body = client.get("/v1/programs/default", headers=admin).json()
    assert (body["id"], body["status"], body["currency"]) == ("default", "active", "USD")
    current = body["current"]
    assert current["version"] == 1 and current["effective_from"].startswith("1970-01-01")
    assert current["rules"]["tiers"] == [
        {"threshold": 1, "reward_cents": 1000},
        {"threshold": 3, "reward_cents": 1500},
    ]
    assert current["rules"]["hold_days"] == 2
    assert current["rules"]["checks"]["same_device"] == "off"
    assert current["rules"]["checks"]["email_alias"] == "hold"
    assert body["scheduled"] == []


def test_a_program_is_created_once_and_listed(client: TestClient, admin: Headers) -> None:
    created = client.post("/v1/programs", json=PARTNERS, headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["currency"], body["status"]) == ("partners", "USD", "active")
    assert body["current"]["version"] == 1
    assert body["current"]["rules"]["tiers"] == [{"threshold": 1, "reward_cents": 500}]
    again = client.post("/v1/programs", json=PARTNERS | {"name": "Other"}, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "program_exists"
    listed = client.get("/v1/programs", headers=admin).json()["items"]
    assert [(p["id"], p["name"]) for p in listed] == [
        ("default", "Default program"),
        ("partners", "Partner program"),
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "rules": {
                    "tiers": [
                        {"threshold": 1, "reward_cents": 1},
                        {"threshold": 1, "reward_cents": 2},
                    ]
                }
            },
            "rules",
        ),
        ({"rules": {"tiers": [{"threshold": 2, "reward_cents": 100}]}}, "rules"),
        ({"rules": {"referee_reward_cents": -1}}, "referee_reward_cents"),
        ({"rules": {"checks": {"email_alias": "sometimes"}}}, "email_alias"),
        ({"rules": {"checks": {"typo_check": "hold"}}}, "typo_check"),
        ({"rules": {"trigger": "click"}}, "trigger"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"id": "Has Spaces"}, "id"),
        ({"share_url_template": "https://example.com/no-code"}, "share_url_template"),
    ],
)
def test_bad_programs_are_refused_naming_the_field_and_write_nothing(
    client: TestClient, admin: Headers, change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/programs", json=PARTNERS | change, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert field in response.text
    assert [p["id"] for p in client.get("/v1/programs", headers=admin).json()["items"]] == [
        "default"
    ]


def test_an_unknown_program_is_404(client: TestClient, admin: Headers) -> None:
    for method, path in (("GET", ""), ("PATCH", ""), ("GET", "/rules"), ("POST", "/rules")):
        body = {"rules": rules(100)} if path else {"name": "x"}
        response = client.request(method, f"/v1/programs/nope{path}", json=body, headers=admin)
        assert response.status_code == 404 and response.json()["code"] == "program_not_found"


def test_programs_are_for_admin_keys_only(client: TestClient, ingest: Headers) -> None:
    assert client.get("/v1/programs", headers=ingest).status_code == 403
    assert client.post("/v1/programs", json=PARTNERS, headers=ingest).status_code == 403


def test_a_version_cannot_start_in_the_past_nor_sooner_than_five_seconds(
    client: TestClient, admin: Headers, clock: FixedClock
) -> None:
    for offset in (timedelta(seconds=-1), timedelta(seconds=4)):
        response = schedule(client, admin, (clock.now() + offset).isoformat(), rules(1))
        assert response.status_code == 400 and "effective_from" in response.text
    versions = client.get("/v1/programs/default/rules", headers=admin).json()["items"]
    assert [v["version"] for v in versions] == [1]


def test_a_new_version_prices_only_what_is_earned_after_it(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str, clock: FixedClock
) -> None:
    before = signup(client, ingest, "bob", alice_code)
    starts = clock.now() + timedelta(hours=1)
    scheduled = schedule(client, admin, starts.isoformat(), rules(4200, hold_days=0))
    assert scheduled.status_code == 201, scheduled.text
    assert scheduled.json()["version"] == 2
    program = client.get("/v1/programs/default", headers=admin).json()
    assert program["current"]["version"] == 1 and [v["version"] for v in program["scheduled"]] == [
        2
    ]

    still_v1 = signup(client, ingest, "carol", alice_code)  # an hour before it starts
    clock.advance(hours=1)
    under_v2 = signup(client, ingest, "dave", alice_code)

    assert (before["reward_cents"], still_v1["reward_cents"]) == (1000, 1000)
    assert under_v2["reward_cents"] == 4200  # the third referral: tier 3 of v1 would pay 1500
    receipts = [detail(client, admin, r["id"])["receipt"] for r in (before, still_v1, under_v2)]
    assert [(r["program"], r["rule_version"]) for r in receipts] == [
        ("default", 1),
        ("default", 1),
        ("default", 2),
    ]
    assert detail(client, admin, before["id"])["reward_cents"] == 1000  # never repriced


def test_a_paused_program_refuses_signups_and_keeps_what_was_earned(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    earned = signup(client, ingest, "bob", alice_code)
    paused = client.patch("/v1/programs/default", json={"status": "paused"}, headers=admin)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    refused = client.post(
        "/v1/signups", json={"user_id": "carol", "referral_code": alice_code}, headers=ingest
    )
    assert refused.status_code == 409 and refused.json()["code"] == "program_paused"
    legacy = client.post(
        "/signup", json={"userId": "carol", "referralCode": alice_code}, headers=ingest
    )
    assert legacy.status_code == 409
    assert detail(client, admin, earned["id"])["status"] == "pending"
    assert client.get("/v1/referrers/carol", headers=admin).status_code == 404  # nothing written
    resumed = client.patch("/v1/programs/default", json={"status": "active"}, headers=admin)
    assert resumed.json()["status"] == "active"
    signup(client, ingest, "carol", alice_code)


def test_an_archived_program_stays_archived(client: TestClient, admin: Headers) -> None:
    client.post("/v1/programs", json=PARTNERS, headers=admin)
    archived = client.patch("/v1/programs/partners", json={"status": "archived"}, headers=admin)
    assert archived.json()["status"] == "archived"
    back = client.patch("/v1/programs/partners", json={"status": "active"}, headers=admin)
    assert back.status_code == 409 and back.json()["code"] == "program_archived"


def test_a_patch_changes_only_what_it_sends(client: TestClient, admin: Headers) -> None:
    client.post("/v1/programs", json=PARTNERS, headers=admin)
    renamed = client.patch("/v1/programs/partners", json={"name": "Partners"}, headers=admin).json()
    assert renamed["share_url_template"] == PARTNERS["share_url_template"]
    cleared = client.patch(
        "/v1/programs/partners", json={"share_url_template": None}, headers=admin
    ).json()
    assert (cleared["name"], cleared["share_url_template"]) == ("Partners", None)


def test_a_shadow_check_keeps_its_verdict_without_holding_the_reward(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str, clock: FixedClock
) -> None:
    starts = clock.now() + timedelta(seconds=5)
    shadow = rules(1000, checks={"disposable_email": "shadow"})
    assert schedule(client, admin, starts.isoformat(), shadow).status_code == 201
    held = signup(client, ingest, "bob", alice_code, email="bob@mailinator.com")
    clock.advance(seconds=5)
    shadowed = signup(client, ingest, "carol", alice_code, email="carol@mailinator.com")
    assert held["status"] == "held"
    assert shadowed["status"] == "pending"
    checks = detail(client, admin, shadowed["id"])["receipt"]["checks"]
    check = next(c for c in checks if c["name"] == "disposable_email")
    assert check == {
        "name": "disposable_email",
        "passed": False,
        "detail": "mailinator.com is a disposable domain",
        "shadow": True,
    }


def test_a_check_switched_from_shadow_to_hold_holds_only_what_is_earned_after_the_switch(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str, clock: FixedClock
) -> None:
    throwaway = "@mailinator.com"
    for mode in ("shadow", "hold"):
        checks = {"disposable_email": mode}
        starts = clock.now() + timedelta(seconds=5)
        assert (
            schedule(client, admin, starts.isoformat(), rules(1000, checks=checks)).status_code
            == 201
        )
        if mode == "hold":
            before = signup(client, ingest, "carol", alice_code, email="carol" + throwaway)
        clock.advance(seconds=5)
        if mode == "shadow":
            shadowed = signup(client, ingest, "bob", alice_code, email="bob" + throwaway)
    after = signup(client, ingest, "dave", alice_code, email="dave" + throwaway)
    assert (shadowed["status"], before["status"], after["status"]) == ("pending", "pending", "held")
    for earned in (shadowed, before):  # never held afterwards: a version never reprices
        assert detail(client, admin, earned["id"])["status"] == "pending"
    receipt = detail(client, admin, after["id"])["receipt"]
    assert receipt["rule_version"] == 3
    check = next(c for c in receipt["checks"] if c["name"] == "disposable_email")
    assert (check["passed"], check["shadow"]) == (False, False)


def test_a_process_built_without_migrating_lists_the_default_program(tmp_path: Path) -> None:
    # As a Lambda function: the tables exist, nothing has needed the default program yet.
    url = f"sqlite:///{tmp_path}/fresh.db"
    build_store(url, migrate=True).dispose()  # type: ignore[attr-defined]
    svc = build(Settings(database_url=url, secret_key="programs-test-secret-" + "0" * 16))
    admin_key, _ = create_key(svc.store, svc.clock, Role.ADMIN)
    client = TestClient(create_app(svc))
    listed = client.get("/v1/programs", headers={"Authorization": f"Bearer {admin_key}"})
    assert [p["id"] for p in listed.json()["items"]] == ["default"]
    svc.store.dispose()  # type: ignore[attr-defined]
