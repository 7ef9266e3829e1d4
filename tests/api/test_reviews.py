"""Held rewards, their review, reversals, receipts and the audit log over HTTP."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.common import signup

Headers = dict[str, str]
MISSING = "01NOSUCHREFERRAL0000000000"


def test_a_referral_shows_its_receipt(client: TestClient, admin: Headers, held: Any) -> None:
    response = client.get(f"/v1/referrals/{held['id']}", headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "held" and body["note"] is None
    assert body["payable_at"] == body["created_at"]
    receipt = body["receipt"]
    assert (receipt["rule"], receipt["tier"], receipt["hold_days"]) == (
        "signup",
        {"threshold": 1, "reward_cents": 1000},
        0,
    )
    assert [(c["name"], c["passed"]) for c in receipt["checks"]] == [
        ("email_alias", True),
        ("disposable_email", False),
    ]
    assert "mailinator.com" in receipt["checks"][1]["detail"]


def test_an_unknown_or_malformed_referral_id(client: TestClient, admin: Headers) -> None:
    assert client.get(f"/v1/referrals/{MISSING}", headers=admin).json()["code"] == "not_found"
    bad = client.get("/v1/referrals/not-an-id", headers=admin)
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")


def test_the_review_queue_shows_held_rewards_with_their_reasons(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str, held: Any
) -> None:
    signup(client, ingest, "carol", alice_code, email="carol@example.com")
    page = client.get("/v1/reviews", headers=admin).json()
    assert [r["id"] for r in page["items"]] == [held["id"]] and page["next_cursor"] is None
    assert page["items"][0]["receipt"]["checks"][1]["passed"] is False


def test_approve_releases_the_reward_and_is_audited(
    client: TestClient, admin: Headers, held: Any
) -> None:
    response = client.post(
        f"/v1/reviews/{held['id']}/approve", json={"reason": "called them"}, headers=admin
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["note"]) == ("pending", "called them")
    assert client.get("/v1/reviews", headers=admin).json()["items"] == []
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert (alice["payable_cents"], alice["held_cents"]) == (1000, 0)
    entry = client.get("/v1/audit", headers=admin).json()["items"][0]  # the newest
    assert (entry["action"], entry["target"], entry["reason"]) == (
        "review.approve",
        f"referral:{held['id']}",
        "called them",
    )
    assert len(entry["actor"]) == 26


def test_approve_needs_no_reason_but_reject_does(
    client: TestClient, admin: Headers, held: Any
) -> None:
    no_reason = client.post(f"/v1/reviews/{held['id']}/reject", json={}, headers=admin)
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "validation_error")
    assert client.post(f"/v1/reviews/{held['id']}/approve", json={}, headers=admin).is_success


def test_approve_with_no_body_at_all_releases_the_reward(
    client: TestClient, admin: Headers, held: Any
) -> None:
    # `curl -X POST .../approve -H "$AUTH"`: no body and no Content-Type.
    response = client.post(f"/v1/reviews/{held['id']}/approve", headers=admin)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["note"]) == ("pending", None)
    entry = client.get("/v1/audit", headers=admin).json()["items"][0]
    assert (entry["action"], entry["reason"]) == ("review.approve", None)


def test_a_reject_posted_as_a_form_says_so_and_keeps_the_reward_held(
    client: TestClient, admin: Headers, held: Any
) -> None:
    # What `curl -d '{"reason": ...}'` sends without -H 'Content-Type: application/json'.
    form = {**admin, "Content-Type": "application/x-www-form-urlencoded"}
    url = f"/v1/reviews/{held['id']}/reject"
    response = client.post(url, content=b'{"reason": "throwaway"}', headers=form)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "Content-Type: application/json" in response.json()["detail"]
    assert client.get(f"/v1/referrals/{held['id']}", headers=admin).json()["status"] == "held"


def test_reject_refuses_the_reward_for_good(client: TestClient, admin: Headers, held: Any) -> None:
    response = client.post(
        f"/v1/reviews/{held['id']}/reject", json={"reason": "throwaway"}, headers=admin
    )
    assert response.json()["status"] == "rejected"
    again = client.post(f"/v1/reviews/{held['id']}/approve", json={}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "not_held")
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert (alice["earned_cents"], alice["held_cents"]) == (0, 0)


def test_reviewing_a_reward_that_is_not_held_is_409(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    pending = signup(client, ingest, "carol", alice_code)
    response = client.post(
        f"/v1/reviews/{pending['id']}/reject", json={"reason": "x"}, headers=admin
    )
    assert (response.status_code, response.json()["code"]) == (409, "not_held")
    missing = client.post(f"/v1/reviews/{MISSING}/approve", json={}, headers=admin)
    assert missing.status_code == 404


def test_reverse_cancels_an_unpaid_reward_once(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    pending = signup(client, ingest, "carol", alice_code)
    url = f"/v1/referrals/{pending['id']}/reverse"
    response = client.post(url, json={"reason": "order refunded"}, headers=admin)
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["note"]) == ("reversed", "order refunded")
    again = client.post(url, json={"reason": "again"}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "not_reversible")
    without = client.post(url, json={"reason": ""}, headers=admin)
    assert (without.status_code, without.json()["code"]) == (400, "validation_error")
    assert client.get("/v1/referrers/alice", headers=admin).json()["earned_cents"] == 0


def test_review_routes_are_admin_only(client: TestClient, ingest: Headers, held: Any) -> None:
    for method, url in [
        ("GET", f"/v1/referrals/{held['id']}"),
        ("GET", "/v1/reviews"),
        ("GET", "/v1/audit"),
        ("POST", f"/v1/reviews/{held['id']}/approve"),
        ("POST", f"/v1/reviews/{held['id']}/reject"),
        ("POST", f"/v1/referrals/{held['id']}/reverse"),
    ]:
        response = client.request(method, url, json={"reason": "x"}, headers=ingest)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden"), url
        assert client.request(method, url, json={"reason": "x"}).status_code == 401


def test_the_audit_log_pages_newest_first_and_records_payouts(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    ids = [signup(client, ingest, f"u{n}", alice_code)["id"] for n in range(3)]
    for referral_id in ids:
        client.post(f"/v1/referrals/{referral_id}/reverse", json={"reason": "r"}, headers=admin)
    assert client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).is_success
    entries, cursor = [], ""
    while cursor is not None:
        page = client.get(
            f"/v1/audit?limit=2&cursor={cursor}" if cursor else "/v1/audit?limit=2", headers=admin
        ).json()
        entries += page["items"]
        cursor = page["next_cursor"]
    # The keys the fixtures made (with the CLI's name as actor) come first in time.
    actions = ["payout.run", *["referral.reverse"] * 3, "key.create", "key.create"]
    assert [e["action"] for e in entries] == actions
    assert [e["target"] for e in entries[1:4]] == [f"referral:{i}" for i in reversed(ids)]
    assert entries[0]["target"] == "payout:2026-10" and entries[-1]["actor"] == "cli"


def test_a_referee_on_the_referrers_ip_is_held(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    enrolled = client.post(
        "/v1/referrers", json={"user_id": "dave", "ip": "2001:db8::1"}, headers=ingest
    )
    code = enrolled.json()["code"]
    # The same address spelled another way is the same address.
    same = signup(client, ingest, "erin", code, ip="2001:0db8:0000::0001")
    other = signup(client, ingest, "frank", code, ip="2001:db8::2", device_id="phone-9")
    assert (same["status"], other["status"]) == ("held", "pending")


@pytest.mark.parametrize(
    "extra",
    [{"ip": "300.1.1.1"}, {"ip": 167772161}, {"device_id": "x" * 257}, {"device_id": "a b"}],
)
def test_bad_fingerprints_are_400_and_write_nothing(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str, extra: Any
) -> None:
    body = {"user_id": "bob", "referral_code": alice_code, **extra}
    response = client.post("/v1/signups", json=body, headers=ingest)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert client.get("/v1/referrers/alice", headers=admin).json()["referral_count"] == 0


def test_reversing_a_paid_reward_claws_it_back_in_the_next_run(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    body = {"user_id": "carol", "referral_code": alice_code, "signed_up_at": "2026-09-15T00:00:00Z"}
    referral = client.post("/v1/signups", json=body, headers=admin).json()["referral"]
    assert client.post("/v1/payouts", json={"period": "2026-09"}, headers=admin).is_success
    url = f"/v1/referrals/{referral['id']}/reverse"
    clawed = client.post(url, json={"reason": "chargeback"}, headers=admin)
    assert clawed.status_code == 200
    detail = clawed.json()
    assert (detail["status"], detail["payout_period"]) == ("clawed_back", "2026-09")
    [entry] = detail["entries"]
    assert (entry["kind"], entry["user_id"], entry["cents"], entry["status"]) == (
        "clawback",
        "alice",
        -1000,
        "pending",
    )
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert (alice["paid_cents"], alice["clawed_back_cents"], alice["earned_cents"]) == (
        1000,
        1000,
        0,
    )
    # Taken back from now on: in the run of the month after this one (the unit and
    # contract tests follow it there; this clock is the real one).
    assert entry["payable_at"] >= detail["created_at"]


@pytest.mark.parametrize("reason", ["nul\u0000byte", "line\nbreak", "\u007f"])
def test_a_reason_with_control_characters_is_400(
    client: TestClient, admin: Headers, held: Any, reason: str
) -> None:
    response = client.post(
        f"/v1/reviews/{held['id']}/reject", json={"reason": reason}, headers=admin
    )
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert client.get(f"/v1/referrals/{held['id']}", headers=admin).json()["status"] == "held"
