"""POST /v1/sales and POST /v1/refunds, and a program's revenue-share rules."""

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.bootstrap import Services
from referrals.services.sales import hold_sale

Headers = dict[str, str]
SHARE = {"tiers": [{"threshold": 1, "bps": 1000}], "months": 0, "ceiling_cents": 0}


@pytest.fixture
def shop(client: TestClient, admin: Headers, ingest: Headers) -> None:
    """A program paying 10 % of each sale; bob referred by alice in it."""
    rules = {"tiers": [{"threshold": 1, "reward_cents": 500}], "share": SHARE}
    created = client.post(
        "/v1/programs", json={"id": "shop", "name": "Shop", "rules": rules}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["current"]["rules"]["share"] == SHARE
    enrolled = client.post("/v1/programs/shop/referrers", json={"user_id": "alice"}, headers=admin)
    code = enrolled.json()["code"]
    signup = client.post(
        "/v1/signups", json={"user_id": "bob", "referral_code": code}, headers=ingest
    )
    assert signup.status_code == 201


def sale(**changes: Any) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()  # the program's rules are in force from its creation
    body = {
        "external_id": "in_1",
        "user_id": "bob",
        "amount_minor": 4999,
        "currency": "USD",
        "occurred_at": at,
        "kind": "renewal",
        "program_id": "shop",
    }
    return {k: v for k, v in (body | changes).items() if v is not None}


def count(services: Services, table: str) -> int:
    with services.store.read() as uow:
        return len(list(uow.connection.exec_driver_sql(f"SELECT 1 FROM {table}")))  # type: ignore[attr-defined]


def test_a_sale_pays_the_referrer_a_share_with_its_receipt(
    client: TestClient, ingest: Headers, shop: None
) -> None:
    response = client.post("/v1/sales", json=sale(), headers=ingest)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["referrer_id"], body["refunded_minor"], body["kind"]) == ("alice", 0, "renewal")
    share = body["share"]
    assert (share["bps"], share["awarded_minor"]) == (1000, 499)
    assert share["receipt"]["rule"] == "share:renewal"
    assert (share["receipt"]["program"], share["receipt"]["rule_version"]) == ("shop", 1)


def test_the_same_sale_again_answers_200_with_the_same_body(
    client: TestClient, ingest: Headers, shop: None
) -> None:
    body = sale()
    first = client.post("/v1/sales", json=body, headers=ingest)
    again = client.post("/v1/sales", json=body, headers=ingest)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_another_sale_under_a_recorded_id_is_a_409(
    client: TestClient, ingest: Headers, services: Services, shop: None
) -> None:
    client.post("/v1/sales", json=sale(), headers=ingest)
    response = client.post("/v1/sales", json=sale(amount_minor=5000), headers=ingest)
    assert response.status_code == 409 and response.json()["code"] == "sale_conflict"
    assert count(services, "sales") == 1


def test_a_sale_of_a_user_nobody_referred_is_stored_unattributed(
    client: TestClient, ingest: Headers, services: Services, shop: None
) -> None:
    response = client.post("/v1/sales", json=sale(user_id="stranger"), headers=ingest)
    assert response.status_code == 201
    assert (response.json()["referral_id"], response.json()["share"]) == (None, None)
    assert count(services, "sales") == 1


def test_a_sale_in_another_currency_is_a_400_currency_mismatch(
    client: TestClient, ingest: Headers, services: Services, shop: None
) -> None:
    response = client.post("/v1/sales", json=sale(currency="EUR"), headers=ingest)
    assert response.status_code == 400
    assert response.json()["code"] == "currency_mismatch"
    assert response.json()["errors"][0]["loc"] == ["currency"]
    assert count(services, "sales") == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": -1},
        {"amount_minor": 12.5},
        {"amount_minor": "100"},
        {"amount_minor": 10**13},
        {"currency": "usd"},
        {"currency": "ZZZ"},
        {"currency": None},
        {"external_id": ""},
        {"occurred_at": "2026-01-01T00:00:00"},  # no time zone
        {"occurred_at": "2999-01-01T00:00:00Z"},  # in the future
        {"kind": "gift"},
        {"user_id": "no spaces"},
    ],
)
def test_malformed_sales_are_a_400_and_write_nothing(
    client: TestClient, ingest: Headers, services: Services, shop: None, changes: dict[str, Any]
) -> None:
    response = client.post("/v1/sales", json=sale(**changes), headers=ingest)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    assert count(services, "sales") == 0


def test_refunds_take_back_the_share_and_never_exceed_the_sale(
    client: TestClient, ingest: Headers, admin: Headers, shop: None
) -> None:
    client.post("/v1/sales", json=sale(amount_minor=10_000), headers=ingest)
    refund = {"sale_external_id": "in_1", "amount_minor": 2500, "external_id": "re_1"}
    first = client.post("/v1/refunds", json=refund, headers=ingest)
    assert first.status_code == 201 and first.json()["reversed_minor"] == 250
    again = client.post("/v1/refunds", json=refund, headers=ingest)
    assert again.status_code == 200 and again.json() == first.json()
    other = client.post("/v1/refunds", json=refund | {"amount_minor": 1}, headers=ingest)
    assert other.status_code == 409 and other.json()["code"] == "refund_conflict"
    too_much = {"sale_external_id": "in_1", "amount_minor": 7501}
    response = client.post("/v1/refunds", json=too_much, headers=ingest)
    assert response.status_code == 409 and response.json()["code"] == "refund_exceeds_sale"
    referrer = client.get("/v1/programs/shop/referrers/alice", headers=admin).json()
    assert referrer["earned_cents"] == 500 + 750


def test_a_refund_of_an_unknown_sale_is_a_404(client: TestClient, ingest: Headers) -> None:
    response = client.post(
        "/v1/refunds", json={"sale_external_id": "nope", "amount_minor": 1}, headers=ingest
    )
    assert response.status_code == 404 and response.json()["code"] == "sale_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"sale_external_id": "in_1", "amount_minor": 0},
        {"sale_external_id": "in_1"},
        {"sale_external_id": "in_1", "amount_minor": 1, "extra": True},
    ],
)
def test_malformed_refunds_are_a_400(
    client: TestClient, ingest: Headers, services: Services, shop: None, body: dict[str, Any]
) -> None:
    client.post("/v1/sales", json=sale(), headers=ingest)
    response = client.post("/v1/refunds", json=body, headers=ingest)
    assert response.status_code == 400
    assert count(services, "refunds") == 0


@pytest.mark.parametrize(
    ("share", "field"),
    [
        ({"tiers": [{"threshold": 1, "bps": 10_001}]}, "bps"),
        ({"tiers": [{"threshold": 1, "bps": 100}, {"threshold": 1, "bps": 200}]}, "share"),
        ({"tiers": [{"threshold": 2, "bps": 100}]}, "share"),
        ({"months": -1}, "months"),
        ({"ceiling_cents": -5}, "ceiling_cents"),
    ],
)
def test_bad_share_rules_are_a_400_naming_the_field(
    client: TestClient, admin: Headers, share: dict[str, Any], field: str
) -> None:
    rules = {"share": share}
    response = client.post(
        "/v1/programs", json={"id": "bad", "name": "Bad", "rules": rules}, headers=admin
    )
    assert response.status_code == 400
    assert any(field in e["loc"] for e in response.json()["errors"])


def test_the_default_rules_pay_no_share(client: TestClient, admin: Headers) -> None:
    rules = client.get("/v1/programs/default/rules", headers=admin).json()["items"][0]["rules"]
    assert rules["share"] == {"tiers": [], "months": 0, "ceiling_cents": 0}


def test_held_shares_are_listed_for_review_until_decided(
    client: TestClient, admin: Headers, ingest: Headers, services: Services, shop: None
) -> None:
    assert client.post("/v1/sales", json=sale(), headers=ingest).status_code == 201
    assert (
        client.post("/v1/sales", json=sale(external_id="in_2"), headers=ingest).status_code == 201
    )
    hold_sale(services.store, services.clock, "in_2", "dispute du_1: fraudulent")
    listed = client.get("/v1/reviews/shares", headers=admin)
    assert listed.status_code == 200
    (held,) = listed.json()["items"]
    assert {k: held[k] for k in ("sale_id", "program_id", "user_id", "cents", "note")} == {
        "sale_id": "in_2",
        "program_id": "shop",
        "user_id": "alice",
        "cents": 499,
        "note": "dispute du_1: fraudulent",
    }
    assert held["with_referral"] is False and listed.json()["next_cursor"] is None
    decided = client.post(
        "/v1/sales/in_2/share/approve", json={"reason": "dispute won"}, headers=admin
    )
    assert decided.status_code == 200
    assert client.get("/v1/reviews/shares", headers=admin).json()["items"] == []


def test_the_held_shares_queue_is_admin_only_and_checks_its_cursor(
    client: TestClient, admin: Headers, ingest: Headers
) -> None:
    assert client.get("/v1/reviews/shares", headers=ingest).status_code == 403
    assert client.get("/v1/reviews/shares").status_code == 401
    bad = client.get("/v1/reviews/shares", params={"cursor": "%%%"}, headers=admin)
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")
    assert client.get("/v1/reviews/shares?limit=0", headers=admin).status_code == 400
