import csv
import hashlib
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from referrals.bootstrap import Services
from referrals.domain.periods import Period, last_ended_period
from referrals.services.payouts import LEASE

Headers = dict[str, str]


@pytest.fixture
def rewards(client: TestClient, admin: Headers, alice_code: str) -> None:
    """Three rewards in October 2026, one in November."""
    moments = ["2026-10-01T00:00:00Z", "2026-10-15T08:00:00Z", "2026-10-31T23:59:59.999Z"]
    for n, moment in enumerate([*moments, "2026-11-01T00:00:00Z"]):
        body = {"user_id": f"u{n}", "referral_code": alice_code, "signed_up_at": moment}
        assert client.post("/v1/signups", json=body, headers=admin).status_code == 201


def test_run_pays_the_period_and_answers_the_completed_run(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    response = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    assert response.status_code == 200
    run = response.json()
    assert run["status"] == "completed" and run["period"] == "2026-10"
    assert (run["referrer_count"], run["referral_count"], run["total_cents"]) == (1, 3, 3000)
    assert run["cutoff"] == "2026-11-01T00:00:00Z"
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert (alice["paid_cents"], alice["payable_cents"]) == (3000, 1000)
    paid = client.get("/v1/referrals?status=paid", headers=admin).json()["items"]
    assert {r["payout_period"] for r in paid} == {"2026-10"} and len(paid) == 3


def test_default_period_is_the_month_just_ended(client: TestClient, admin: Headers) -> None:
    response = client.post("/v1/payouts", json={}, headers=admin)
    assert response.status_code == 200
    assert response.json()["period"] == str(last_ended_period(datetime.now(UTC)))


def test_second_run_is_a_no_op(client: TestClient, admin: Headers, rewards: None) -> None:
    first = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).json()
    again = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    assert again.status_code == 200 and again.json() == first


def test_dry_run_shows_lines_and_writes_nothing(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    response = client.post(
        "/v1/payouts", json={"period": "2026-10", "dry_run": True}, headers=admin
    )
    assert response.status_code == 200
    preview = response.json()
    assert preview["lines"] == [
        {
            "referrer_id": "alice",
            "referral_count": 3,
            "amount_cents": 3000,
            "kind": "reward",
            "program_id": "default",
            "currency": "USD",
        }
    ]
    assert preview["total_cents"] == 3000 and "status" not in preview
    assert [(t["currency"], t["total_cents"]) for t in preview["totals"]] == [("USD", 3000)]
    assert preview["run_status"] is None and preview["completed_at"] is None
    assert client.get("/v1/payouts", headers=admin).json()["items"] == []
    assert len(client.get("/v1/referrals?status=pending", headers=admin).json()["items"]) == 4


def test_a_period_that_has_not_ended_is_400(client: TestClient, admin: Headers) -> None:
    response = client.post("/v1/payouts", json={"period": "2099-01"}, headers=admin)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("body", [{"period": "2026-13"}, {"period": 202610}, {"dry_run": "yes"}])
def test_bad_payout_requests_are_400(client: TestClient, admin: Headers, body: object) -> None:
    assert client.post("/v1/payouts", json=body, headers=admin).status_code == 400


def test_a_live_run_elsewhere_is_409(
    client: TestClient, admin: Headers, services: Services, rewards: None
) -> None:
    now = services.clock.now()
    with services.store.unit_of_work() as uow:
        uow.payouts.claim("2026-10", Period(2026, 10).cutoff, "elsewhere", now, now + LEASE)
        uow.commit()
    response = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    assert response.status_code == 409
    assert response.json()["code"] == "payout_in_progress"


def test_runs_are_listed_and_shown(client: TestClient, admin: Headers, rewards: None) -> None:
    client.post("/v1/payouts", json={"period": "2026-09"}, headers=admin)
    client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    runs = client.get("/v1/payouts", headers=admin).json()["items"]
    assert [r["period"] for r in runs] == ["2026-10", "2026-09"]
    assert runs[0]["previous_month_sha256"] == runs[1]["report_sha256"]
    assert client.get("/v1/payouts/2026-09", headers=admin).json()["referral_count"] == 0
    missing = client.get("/v1/payouts/2026-01", headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get("/v1/payouts/2026-1", headers=admin).status_code == 400


def test_report_is_csv_matching_the_run(client: TestClient, admin: Headers, rewards: None) -> None:
    run = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).json()
    response = client.get("/v1/payouts/2026-10/report", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(response.content).hexdigest() == run["report_sha256"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "period": "2026-10",
            "referrer_id": "alice",
            "referral_count": "3",
            "amount_cents": "3000",
            "amount": "30.00",
            "currency": "USD",
            "program": "default",
        }
    ]
    assert client.get("/v1/payouts/2026-01/report", headers=admin).status_code == 404


def test_payouts_need_an_admin_key(client: TestClient, ingest: Headers) -> None:
    assert client.post("/v1/payouts", json={}, headers=ingest).status_code == 403
    assert client.get("/v1/payouts").status_code == 401


def test_events_list_and_dead_letter_retry(
    client: TestClient, admin: Headers, services: Services, rewards: None
) -> None:
    events = client.get("/v1/events", headers=admin).json()["items"]
    assert [e["type"] for e in events] == ["referral.created"] * 4
    assert client.get("/v1/events?status=dead", headers=admin).json()["items"] == []
    target = events[0]["id"]
    now = services.clock.now()
    with services.store.unit_of_work() as uow:
        uow.outbox.attempt_failed(target, "HTTP 503", now, dead=True)
        uow.commit()
    dead = client.get("/v1/events?status=dead", headers=admin).json()["items"]
    assert [e["id"] for e in dead] == [target]
    retried = client.post(f"/v1/events/{target}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    again = client.post(f"/v1/events/{target}/retry", headers=admin)
    assert again.status_code == 404
    assert client.post("/v1/events/not-an-id/retry", headers=admin).status_code == 400
    audit = client.get("/v1/audit", headers=admin).json()["items"]
    retries = [(e["action"], e["target"]) for e in audit if e["action"] == "event.retry"]
    assert retries == [("event.retry", f"event:{target}")]  # once: the refused one is not


def test_events_carry_their_data_under_the_webhook_bodys_name(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    (event, *_) = client.get("/v1/events", headers=admin).json()["items"]
    assert event["data"]["referrer_id"] == "alice" and event["data"]["reward_cents"] == 1000
    assert event["payload"] == event["data"]  # the former name, kept for older clients
    schema = client.get("/openapi.json").json()["components"]["schemas"]["EventOut"]
    assert schema["properties"]["payload"].get("deprecated") is True


def test_a_dry_run_of_a_completed_month_says_it_is_completed(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    run = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).json()
    response = client.post(
        "/v1/payouts", json={"period": "2026-10", "dry_run": True}, headers=admin
    )
    assert response.status_code == 200
    preview = response.json()
    assert preview["run_status"] == "completed" and preview["completed_at"] == run["completed_at"]
    assert (preview["referral_count"], preview["total_cents"]) == (3, 3000)  # what it paid
    assert [line["referrer_id"] for line in preview["lines"]] == ["alice"]
    assert "status" not in preview  # still a preview, not a run


def test_runs_link_the_month_before_and_the_run_before(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    november = client.post("/v1/payouts", json={"period": "2026-11"}, headers=admin).json()
    september = client.post("/v1/payouts", json={"period": "2026-09"}, headers=admin).json()
    assert (november["previous_month_period"], november["previous_period"]) == (None, None)
    assert september["previous_month_period"] is None  # no month before it was paid
    assert september["previous_period"] == "2026-11"
    assert september["previous_sha256"] == november["report_sha256"]


def test_a_dry_run_lists_the_rewards_held_for_review_and_why(
    client: TestClient, admin: Headers, rewards: None, alice_code: str
) -> None:
    body = {
        "user_id": "mallory",
        "referral_code": alice_code,
        "email": "m@yopmail.com",
        "signed_up_at": "2026-10-20T00:00:00Z",
    }
    held = client.post("/v1/signups", json=body, headers=admin).json()["referral"]
    preview = client.post("/v1/payouts", json={"period": "2026-10", "dry_run": True}, headers=admin)
    answer = preview.json()
    assert answer["total_cents"] == 3000 and answer["clawback_cents"] == 0
    assert answer["held_count"] == 1 and answer["carried_forward"] == []
    [shown] = answer["held"]
    assert (shown["referral_id"], shown["referrer_id"], shown["reward_cents"]) == (
        held["id"],
        "alice",
        1500,
    )
    assert shown["reasons"] == ["yopmail.com is a disposable domain"]
    run = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).json()
    assert (run["total_cents"], run["clawback_cents"], run["carried_forward_cents"]) == (3000, 0, 0)


def test_openapi_documents_the_completed_run_and_the_started_one(client: TestClient) -> None:
    # 200 where the request runs the payout (and for a completed period everywhere); 202
    # where a run is started off the request path (AWS), with its URL in Location.
    operation = client.get("/openapi.json").json()["paths"]["/v1/payouts"]["post"]
    answers = operation["responses"]
    assert {
        s["$ref"] for s in answers["200"]["content"]["application/json"]["schema"]["anyOf"]
    } == {
        "#/components/schemas/PayoutRunOut",
        "#/components/schemas/PayoutPreviewOut",
    }
    started = answers["202"]
    assert started["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PayoutStartedOut"
    }
    assert set(started["headers"]) == {"Location"}


def test_without_a_state_machine_a_run_still_completes_within_the_request(
    client: TestClient, admin: Headers, rewards: None
) -> None:
    assert client.app.state.services.payout_starter is None  # type: ignore[attr-defined]
    response = client.post("/v1/payouts", json={"period": "2026-10"}, headers=admin)
    assert response.status_code == 200 and "location" not in response.headers
    assert response.json()["status"] == "completed"
