"""Referrers per program over HTTP: a user enrolls in several programs with a code in
each, a signup's code finds its program and its rules, and what each program counts
and owes stays its own. The routes without a program act on the default one."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.common import Headers, signup

PARTNERS = {
    "id": "partners",
    "name": "Partner program",
    "currency": "USD",
    "rules": {
        "tiers": [{"threshold": 1, "reward_cents": 5000}, {"threshold": 2, "reward_cents": 7500}]
    },
}


@pytest.fixture
def partners(client: TestClient, admin: Headers) -> None:
    assert client.post("/v1/programs", json=PARTNERS, headers=admin).status_code == 201


def enroll(client: TestClient, headers: Headers, user: str, program: str | None = None) -> Any:
    path = f"/v1/programs/{program}/referrers" if program else "/v1/referrers"
    response = client.post(path, json={"user_id": user}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.usefixtures("partners")
def test_a_user_refers_in_two_programs_each_with_its_own_code_and_rules(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    default = enroll(client, ingest, "alice")
    partner = enroll(client, ingest, "alice", "partners")
    assert default["program_id"] == "default" and partner["program_id"] == "partners"
    assert default["code"] != partner["code"]

    in_partners = signup(client, ingest, "bob", partner["code"])
    in_default = signup(client, ingest, "bob", default["code"])  # once per program
    assert (in_partners["program_id"], in_partners["reward_cents"]) == ("partners", 5000)
    assert (in_default["program_id"], in_default["reward_cents"]) == ("default", 1000)
    assert in_partners["ordinal"] == in_default["ordinal"] == 1
    second = signup(client, ingest, "carol", partner["code"])
    assert (second["ordinal"], second["reward_cents"]) == (2, 7500)

    receipt = client.get(f"/v1/referrals/{in_partners['id']}", headers=admin).json()["receipt"]
    assert (receipt["program"], receipt["rule_version"]) == ("partners", 1)

    mine = client.get("/v1/programs/partners/referrers/alice", headers=admin).json()
    assert (mine["referral_count"], mine["earned_cents"]) == (2, 12500)
    theirs = client.get("/v1/referrers/alice", headers=admin).json()
    assert (theirs["program_id"], theirs["referral_count"], theirs["earned_cents"]) == (
        "default",
        1,
        1000,
    )
    # bob was enrolled as a referrer in both programs by his signups.
    assert client.get("/v1/programs/partners/referrers/bob", headers=admin).status_code == 200
    assert client.get("/v1/referrers/bob", headers=admin).status_code == 200


@pytest.mark.usefixtures("partners")
def test_lists_are_per_program(client: TestClient, admin: Headers, ingest: Headers) -> None:
    default, partner = enroll(client, ingest, "alice"), enroll(client, ingest, "alice", "partners")
    signup(client, ingest, "bob", partner["code"])
    signup(client, ingest, "carol", default["code"])
    listed = client.get("/v1/programs/partners/referrers/alice/referrals", headers=admin).json()
    assert [r["referee_id"] for r in listed["items"]] == ["bob"]
    listed = client.get("/v1/referrers/alice/referrals", headers=admin).json()
    assert [r["referee_id"] for r in listed["items"]] == ["carol"]
    every = client.get("/v1/referrals", headers=admin).json()["items"]
    assert {r["referee_id"] for r in every} == {"bob", "carol"}
    only = client.get("/v1/referrals?program=partners", headers=admin).json()["items"]
    assert [r["referee_id"] for r in only] == ["bob"]
    by_referrer = client.get("/v1/referrals?referrer_id=alice", headers=admin).json()["items"]
    assert [r["referee_id"] for r in by_referrer] == ["carol"]  # the default program's


@pytest.mark.usefixtures("partners")
def test_a_paused_program_refuses_signups_and_gives_the_count_back(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    code = enroll(client, ingest, "alice", "partners")["code"]
    client.patch("/v1/programs/partners", json={"status": "paused"}, headers=admin)
    refused = client.post(
        "/v1/signups", json={"user_id": "bob", "referral_code": code}, headers=ingest
    )
    assert refused.status_code == 409 and refused.json()["code"] == "program_paused"
    client.patch("/v1/programs/partners", json={"status": "active"}, headers=admin)
    assert signup(client, ingest, "bob", code)["ordinal"] == 1


def test_enrolling_in_an_unknown_program_is_404_and_writes_nothing(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    response = client.post("/v1/programs/nope/referrers", json={"user_id": "a"}, headers=ingest)
    assert response.status_code == 404 and response.json()["code"] == "program_not_found"
    assert client.get("/v1/programs/nope/referrers/a", headers=admin).status_code == 404
    bad = client.post("/v1/programs/Not_A_Slug/referrers", json={"user_id": "a"}, headers=ingest)
    assert bad.status_code == 400


@pytest.mark.usefixtures("partners")
def test_an_archived_program_takes_no_new_referrers(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    enroll(client, ingest, "alice", "partners")
    client.patch("/v1/programs/partners", json={"status": "archived"}, headers=admin)
    refused = client.post("/v1/programs/partners/referrers", json={"user_id": "b"}, headers=ingest)
    assert refused.status_code == 409 and refused.json()["code"] == "program_archived"
    again = client.post(
        "/v1/programs/partners/referrers", json={"user_id": "alice"}, headers=ingest
    )
    assert again.status_code == 200  # enrolled before: the same answer


@pytest.mark.usefixtures("partners")
def test_a_code_is_taken_across_programs(client: TestClient, ingest: Headers) -> None:
    taken = {"user_id": "alice", "code": "SHARED"}
    assert client.post("/v1/referrers", json=taken, headers=ingest).status_code == 201
    other = {"user_id": "bob", "code": "shared"}
    response = client.post("/v1/programs/partners/referrers", json=other, headers=ingest)
    assert response.status_code == 409 and response.json()["code"] == "code_taken"


def test_a_conversion_in_an_unknown_program_is_404(client: TestClient, ingest: Headers) -> None:
    body = {"user_id": "bob", "event": "purchase", "external_id": "x1", "program_id": "nope"}
    response = client.post("/v1/conversions", json=body, headers=ingest)
    assert response.status_code == 404 and response.json()["code"] == "program_not_found"
