"""POST /v1/integrations/stripe/webhook: events shaped and signed as Stripe sends them,
on a SQLite store; Stripe's sales go to a program paying referrers 10 % of their referees' sales."""

import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr

from referrals.api.app import create_app
from referrals.bootstrap import Services, seed_rules
from referrals.domain.model import ReferralStatus, RewardKind
from referrals.domain.program import Program
from referrals.domain.sales import Sale, ShareTier, ShareTiers
from referrals.services.programs import create_program
from tests import stripe_payloads as s
from tests.api.common import signup

PATH = "/v1/integrations/stripe/webhook"
SAAS = "saas"
Headers = dict[str, str]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stripe_webhook_secret": s.SECRET, "stripe_program": SAAS}


@pytest.fixture
def bob(services: Services, client: TestClient, admin: Headers) -> Any:
    """Bob, referred by Alice in the `saas` program (where Stripe's sales go), signed up
    with bob@example.com; Alice earns 10 % of his sales."""
    rules = replace(seed_rules(services.settings), share_tiers=ShareTiers((ShareTier(1, 1000),)))
    create_program(services.store, services.clock, "test", Program(SAAS, "SaaS"), rules)
    enrolled = client.post(
        f"/v1/programs/{SAAS}/referrers", json={"user_id": "alice"}, headers=admin
    )
    return signup(client, admin, "bob", enrolled.json()["code"], email="bob@example.com")


def post(
    client: TestClient,
    event: dict[str, Any] | bytes,
    *,
    secret: str = s.SECRET,
    at: int | None = None,
    header: str | None = None,
) -> Response:
    payload = event if isinstance(event, bytes) else s.body(event)
    signature = s.signature(payload, secret, at) if header is None else header
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["Stripe-Signature"] = signature
    return client.post(PATH, content=payload, headers=headers)


def sale(services: Services, external_id: str) -> Sale | None:
    with services.store.read() as uow:
        return uow.sales.get(external_id)


def share(services: Services, found: Sale) -> Any:
    assert found.reward_id is not None
    with services.store.read() as uow:
        return uow.rewards.get(found.reward_id)


def outcomes(response: Response) -> list[tuple[str, str, str]]:
    assert response.status_code == 200, response.text
    return [(o["action"], o["id"], o["result"]) for o in response.json()["outcomes"]]


INVOICE = "in_1QmTinvoice0001"


def test_an_invoice_paid_is_a_sale_attributed_by_email_and_pays_a_share(
    client: TestClient, services: Services, bob: Any
) -> None:
    response = post(client, s.event("invoice.paid", s.invoice(INVOICE, 4900)))
    assert outcomes(response) == [("sale", INVOICE, "recorded")]
    assert response.json()["type"] == "invoice.paid"
    recorded = sale(services, INVOICE)
    assert recorded is not None
    assert (recorded.user_id, recorded.referral_id, recorded.amount_minor, recorded.currency) == (
        "bob",
        bob["id"],
        4900,
        "USD",
    )
    reward = share(services, recorded)
    assert (reward.kind, reward.user_id, reward.cents) == (RewardKind.SHARE, "alice", 490)


def test_the_email_matches_in_any_case(client: TestClient, services: Services, bob: Any) -> None:
    post(client, s.event("invoice.paid", s.invoice(INVOICE, email="BOB@Example.COM")))
    recorded = sale(services, INVOICE)
    assert recorded is not None and recorded.referral_id == bob["id"]


def test_the_metadata_user_wins_over_the_email(
    client: TestClient, services: Services, bob: Any
) -> None:
    invoice = s.invoice(
        INVOICE, email="someone@example.org", subscription_metadata={"referrals_user_id": "bob"}
    )
    post(client, s.event("invoice.paid", invoice))
    recorded = sale(services, INVOICE)
    assert recorded is not None and (recorded.user_id, recorded.referral_id) == ("bob", bob["id"])


def test_a_customer_matching_no_user_is_a_sale_unattributed(
    client: TestClient, services: Services, bob: Any
) -> None:
    response = post(client, s.event("invoice.paid", s.invoice(INVOICE, email="eve@example.org")))
    assert outcomes(response) == [("sale", INVOICE, "recorded")]
    recorded = sale(services, INVOICE)
    assert recorded is not None
    assert (recorded.user_id, recorded.referral_id, recorded.reward_id) == (
        "stripe:cus_RfT0bob000001",
        None,
        None,
    )


def test_a_replayed_event_changes_nothing(client: TestClient, services: Services, bob: Any) -> None:
    event = s.event("invoice.paid", s.invoice(INVOICE, 4900))
    post(client, event)
    first = sale(services, INVOICE)
    again = post(client, event, at=int(time.time()) + 1)  # Stripe signs each delivery anew
    assert outcomes(again) == [("sale", INVOICE, "replayed")]
    assert sale(services, INVOICE) == first


def test_a_replay_after_the_customer_signed_up_changes_nothing(
    client: TestClient, services: Services, admin: Headers, bob: Any
) -> None:
    event = s.event("invoice.paid", s.invoice(INVOICE, email="carol@example.com"))
    post(client, event)
    signup(client, admin, "carol", bob["code"], email="carol@example.com")
    assert outcomes(post(client, event)) == [("sale", INVOICE, "replayed")]
    recorded = sale(services, INVOICE)
    assert recorded is not None and recorded.referral_id is None  # as first recorded


def test_a_subscription_checkout_and_its_invoice_are_one_sale(
    client: TestClient, services: Services, bob: Any
) -> None:
    session = s.checkout_session(mode="subscription", amount=4900)
    assert outcomes(post(client, s.event("checkout.session.completed", session))) == []
    post(client, s.event("invoice.paid", s.invoice(INVOICE, 4900), n=2))
    with services.store.read() as uow:
        tallied = uow.sales.tally(
            SAAS, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(hours=1)
        )
    assert sum(t.sales for t in tallied) == 1
    assert sum(t.revenue_minor for t in tallied) == 4900


def test_a_payment_checkout_is_a_sale_of_its_client_reference(
    client: TestClient, services: Services, bob: Any
) -> None:
    session = s.checkout_session(amount=2500, client_reference_id="bob", email=None)
    response = post(client, s.event("checkout.session.completed", session))
    assert outcomes(response) == [("sale", "pi_3QmTcheckout0001", "recorded")]
    recorded = sale(services, "pi_3QmTcheckout0001")
    assert recorded is not None and recorded.referral_id == bob["id"]


def payment(client: TestClient, services: Services) -> Sale:
    """Bob's checkout of 100.00, paid by charge ch_1 of payment intent pi_1: a share of 10.00."""
    session = s.checkout_session(amount=10_000, payment_intent="pi_1")
    post(client, s.event("checkout.session.completed", session))
    found = sale(services, "pi_1")
    assert found is not None and share(services, found).cents == 1000
    return found


def test_a_charge_refunded_refunds_each_listed_refund_once(
    client: TestClient, services: Services, bob: Any
) -> None:
    payment(client, services)
    refunds = [s.refund("re_1", 3000, charge="ch_1", payment_intent="pi_1")]
    charge = s.charge("ch_1", 10_000, amount_refunded=3000, payment_intent="pi_1", refunds=refunds)
    assert outcomes(post(client, s.event("charge.refunded", charge))) == [
        ("refund", "re_1", "recorded")
    ]
    refunds.insert(0, s.refund("re_2", 2000, charge="ch_1", payment_intent="pi_1"))
    charge = s.charge("ch_1", 10_000, amount_refunded=5000, payment_intent="pi_1", refunds=refunds)
    assert outcomes(post(client, s.event("charge.refunded", charge, n=2))) == [
        ("refund", "re_2", "recorded"),
        ("refund", "re_1", "replayed"),
    ]
    after = sale(services, "pi_1")
    assert after is not None and after.refunded_minor == 5000
    assert share(services, after).cents == 500  # 10 % of the 50.00 kept


def test_a_charge_refunded_without_its_list_refunds_what_its_total_adds(
    client: TestClient, services: Services, bob: Any
) -> None:
    payment(client, services)
    first = s.event(
        "charge.refunded", s.charge("ch_1", 10_000, amount_refunded=3000, payment_intent="pi_1")
    )
    assert outcomes(post(client, first)) == [("refund", "ch_1/refunded/3000", "recorded")]
    assert outcomes(post(client, first)) == [("refund", "ch_1/refunded/3000", "replayed")]
    later = s.charge("ch_1", 10_000, amount_refunded=10_000, payment_intent="pi_1")
    post(client, s.event("charge.refunded", later, n=2))
    after = sale(services, "pi_1")
    assert after is not None and after.refunded_minor == 10_000
    assert share(services, after).cents == 0


def test_an_invoice_sale_is_refunded_and_disputed_through_its_payment(
    client: TestClient, services: Services, bob: Any
) -> None:
    """Since 2025-03-31.basil an invoice names no payment and a charge no invoice:
    invoice_payment.paid links them, in whichever order the events come."""
    link = s.event("invoice_payment.paid", s.invoice_payment(INVOICE, "pi_7", 10_000), n=1)
    assert outcomes(post(client, link)) == [("link", "pi_7", "recorded")]
    post(client, s.event("invoice.paid", s.invoice(INVOICE, 10_000), n=2))
    assert outcomes(post(client, link)) == [("link", "pi_7", "replayed")]
    charge = s.charge("ch_7", 10_000, amount_refunded=4000, payment_intent="pi_7")
    assert outcomes(post(client, s.event("charge.refunded", charge, n=3))) == [
        ("refund", "ch_7/refunded/4000", "recorded")
    ]
    refunded = sale(services, INVOICE)
    assert refunded is not None and refunded.refunded_minor == 4000
    assert share(services, refunded).cents == 600  # 10 % of the 60.00 kept
    response = post(client, s.event("charge.dispute.created", s.dispute("ch_7", "pi_7"), n=4))
    assert outcomes(response) == [("hold", INVOICE, "recorded")]


def test_a_refund_of_a_sale_never_recorded_is_taken_and_ignored(
    client: TestClient, services: Services, bob: Any
) -> None:
    charge = s.charge("ch_9", 500, amount_refunded=500, payment_intent="pi_9")
    response = post(client, s.event("charge.refunded", charge))
    (outcome,) = response.json()["outcomes"]
    assert (outcome["result"], outcome["detail"].split(":")[0]) == ("ignored", "sale_not_found")


def test_a_dispute_holds_the_share_of_the_disputed_sale(
    client: TestClient, services: Services, bob: Any
) -> None:
    payment(client, services)
    response = post(client, s.event("charge.dispute.created", s.dispute("ch_1", "pi_1")))
    assert outcomes(response) == [("hold", "pi_1", "recorded")]
    found = sale(services, "pi_1")
    assert found is not None
    held = share(services, found)
    assert (held.status.value, held.note) == (
        "held",
        "Stripe dispute dp_1QmTdispute0001 (fraudulent)",
    )


def test_an_event_not_read_here_is_taken(client: TestClient, services: Services, bob: Any) -> None:
    event = s.event("customer.subscription.created", {"id": "sub_1", "object": "subscription"})
    response = post(client, event)
    assert response.status_code == 200
    assert response.json() == {
        "received": True,
        "id": event["id"],
        "type": "customer.subscription.created",
        "outcomes": [],
    }


def test_a_sale_in_another_currency_is_taken_and_ignored(
    client: TestClient, services: Services, bob: Any
) -> None:
    response = post(client, s.event("invoice.paid", s.invoice(INVOICE, currency="eur")))
    (outcome,) = response.json()["outcomes"]
    assert (outcome["result"], outcome["detail"].split(":")[0]) == ("ignored", "currency_mismatch")
    assert sale(services, INVOICE) is None


def refused(response: Response, code: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "how",
    [
        {"secret": "whsec_another0endpoint0secret000000"},
        {"at": int(time.time()) - 301},  # past the library's 300 s tolerance
        {"header": ""},
        {"header": "t=abc,v1=nothex"},
        {"header": "t=1700000000"},
    ],
    ids=["wrong secret", "stale", "missing", "garbled", "no v1"],
)
def test_a_bad_signature_is_refused_and_nothing_is_written(
    client: TestClient, services: Services, bob: Any, how: dict[str, Any]
) -> None:
    refused(post(client, s.event("invoice.paid", s.invoice(INVOICE)), **how), "invalid_signature")
    assert sale(services, INVOICE) is None


def test_a_body_changed_after_signing_is_refused(
    client: TestClient, services: Services, bob: Any
) -> None:
    payload = s.body(s.event("invoice.paid", s.invoice(INVOICE, 4900)))
    header = s.signature(payload)
    tampered = payload.replace(b'"amount_paid": 4900', b'"amount_paid": 9900')
    refused(post(client, tampered, header=header), "invalid_signature")
    assert sale(services, INVOICE) is None


def test_a_signed_body_that_is_not_json_is_refused(client: TestClient, bob: Any) -> None:
    response = post(client, b'{"id": "evt_1", "type": ')
    refused(response, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["body"]


def test_a_signed_event_it_cannot_read_names_the_field(
    client: TestClient, services: Services, bob: Any
) -> None:
    response = post(client, s.event("invoice.paid", s.invoice(INVOICE) | {"amount_paid": "49"}))
    refused(response, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["data", "object", "amount_paid"]
    assert sale(services, INVOICE) is None


def test_an_unsigned_garbage_body_is_an_invalid_signature(client: TestClient, bob: Any) -> None:
    refused(post(client, b"\xff\xfe not json", header="t=1,v1=00"), "invalid_signature")


def test_the_webhook_is_off_without_a_secret(services: Services) -> None:
    settings = services.settings.model_copy(update={"stripe_webhook_secret": SecretStr("")})
    response = TestClient(create_app(replace(services, settings=settings))).post(
        PATH, content=b"{}"
    )
    assert response.status_code == 404
    assert "REFERRALS_STRIPE_WEBHOOK_SECRET" in response.json()["detail"]


def test_the_webhook_needs_no_api_key_and_is_in_the_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][PATH]["post"]
    assert {"200", "400", "404"} <= operation["responses"].keys()
    assert "security" not in operation


def test_the_stripe_library_is_not_imported_with_the_app() -> None:
    code = "import sys; import referrals.api.app; print('stripe' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(found.stdout.strip().lower()) is False


@pytest.mark.parametrize(("decision", "state"), [("approve", "pending"), ("reject", "rejected")])
def test_an_admin_decides_a_disputed_share_with_a_reason(
    client: TestClient, services: Services, admin: Headers, bob: Any, decision: str, state: str
) -> None:
    payment(client, services)
    post(client, s.event("charge.dispute.created", s.dispute("ch_1", "pi_1")))
    path = f"/v1/sales/pi_1/share/{decision}"
    assert client.post(path, json={}, headers=admin).status_code == 400  # a reason is needed
    decided = client.post(path, json={"reason": "the dispute was settled"}, headers=admin)
    assert decided.status_code == 200, decided.text
    assert (decided.json()["kind"], decided.json()["status"]) == ("share", state)
    again = client.post(path, json={"reason": "twice"}, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "not_held")
    missing = client.post("/v1/sales/pi_none/share/approve", json={"reason": "x"}, headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "sale_not_found")


def closed(status: str, amount: int = 10_000) -> dict[str, Any]:
    return s.dispute("ch_1", "pi_1", amount=amount) | {"status": status}


def test_a_dispute_won_releases_the_share_it_held_once(
    client: TestClient, services: Services, bob: Any
) -> None:
    found = payment(client, services)
    post(client, s.event("charge.dispute.created", s.dispute("ch_1", "pi_1")))
    event = s.event("charge.dispute.closed", closed("won"), n=2)
    assert outcomes(post(client, event)) == [("release", "pi_1", "recorded")]
    released = share(services, found)
    assert (released.status.value, released.cents) == ("pending", 1000)
    assert outcomes(post(client, event)) == [("release", "pi_1", "replayed")]


def test_a_dispute_lost_takes_the_disputed_amount_back_as_a_refund(
    client: TestClient, services: Services, bob: Any
) -> None:
    found = payment(client, services)
    post(client, s.event("charge.dispute.created", s.dispute("ch_1", "pi_1")))
    event = s.event("charge.dispute.closed", closed("lost", amount=4_000), n=2)
    assert outcomes(post(client, event)) == [
        ("release", "pi_1", "recorded"),
        ("refund", "dp_1QmTdispute0001/lost", "recorded"),
    ]
    lowered = share(services, found)
    assert (lowered.status.value, lowered.cents) == ("pending", 600)  # 10 % of 60.00 kept
    again = outcomes(post(client, event))
    assert [result for _, _, result in again] == ["replayed", "replayed"]
    kept = sale(services, "pi_1")
    assert kept is not None and kept.refunded_minor == 4_000


def test_a_closed_dispute_leaves_a_hold_it_did_not_make(
    client: TestClient, services: Services, admin: Headers, bob: Any
) -> None:
    """A share held with its referral by a fraud check waits for that review."""
    found = payment(client, services)
    assert found.reward_id is not None
    with services.store.unit_of_work() as uow:
        held = ReferralStatus.HELD
        uow.rewards.transition(found.reward_id, {ReferralStatus.PENDING}, held, "velocity")
        uow.commit()
    event = s.event("charge.dispute.closed", closed("won"), n=2)
    assert outcomes(post(client, event)) == [("release", "pi_1", "replayed")]
    assert share(services, found).status.value == "held"
