"""Stripe's events read into sales, refunds and holds (services.stripe_events): pure, on
payloads shaped as Stripe sends them."""

from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.domain.errors import InvalidInput
from referrals.domain.sales import SaleKind
from referrals.services.stripe_events import (
    Customer,
    HoldCommand,
    LinkCommand,
    RefundCommand,
    SaleCommand,
    commands,
    envelope,
)
from tests import stripe_payloads as s


def read(event: dict[str, Any], program: str = "default") -> list[Any]:
    return commands(envelope(event), program)


def test_an_invoice_paid_is_a_purchase_of_its_amount_paid_keyed_by_the_invoice() -> None:
    paid_at = 1_767_225_600
    event = s.event("invoice.paid", s.invoice(amount=4900, paid_at=paid_at))
    assert read(event) == [
        SaleCommand(
            "in_1QmTinvoice0001",
            "default",
            Customer(None, "bob@example.com", "cus_RfT0bob000001"),
            4900,
            "USD",
            datetime.fromtimestamp(paid_at, UTC),
            SaleKind.PURCHASE,
        )
    ]


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("subscription_create", SaleKind.PURCHASE),
        ("manual", SaleKind.PURCHASE),
        ("subscription_cycle", SaleKind.RENEWAL),
        ("subscription_update", SaleKind.RENEWAL),
    ],
)
def test_a_subscription_cycle_is_a_renewal(reason: str, kind: SaleKind) -> None:
    (sale,) = read(s.event("invoice.paid", s.invoice(billing_reason=reason)))
    assert sale.kind is kind


def test_an_invoice_without_a_paid_time_occurred_when_the_event_was_made() -> None:
    invoice = s.invoice()
    invoice["status_transitions"]["paid_at"] = None
    (sale,) = read(s.event("invoice.paid", invoice, created=1_767_225_600))
    assert sale.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_the_subscription_metadata_names_the_user_and_the_invoice_own_wins() -> None:
    invoice = s.invoice(
        subscription_metadata={"referrals_user_id": "bob", "referrals_program": "p"}
    )
    (sale,) = read(s.event("invoice.paid", invoice))
    assert (sale.customer.user_id, sale.program) == ("bob", "p")
    invoice = s.invoice(
        subscription_metadata={"referrals_user_id": "bob"}, metadata={"referrals_user_id": "bob-2"}
    )
    (sale,) = read(s.event("invoice.paid", invoice))
    assert sale.customer.user_id == "bob-2"


def test_a_zero_invoice_is_no_sale() -> None:
    assert read(s.event("invoice.paid", s.invoice(amount=0))) == []


def test_an_invoice_of_an_older_api_version_is_keyed_by_its_payment_intent() -> None:
    invoice = s.invoice()
    del invoice["parent"]
    invoice |= {
        "payment_intent": "pi_3QmTold0001",
        "charge": "ch_3QmTold0001",
        "subscription_details": {"metadata": {"referrals_user_id": "bob"}},
    }
    (sale,) = read(s.event("invoice.paid", invoice))
    assert (sale.external_id, sale.customer.user_id) == ("pi_3QmTold0001", "bob")


def test_an_invoice_with_its_payments_included_is_keyed_by_the_default_payment() -> None:
    invoice = s.invoice()
    invoice["payments"] = {
        "object": "list",
        "data": [
            {
                "id": "inpay_1QmT0001",
                "object": "invoice_payment",
                "amount_paid": 4900,
                "invoice": invoice["id"],
                "is_default": True,
                "payment": {"payment_intent": "pi_3QmTinv0001", "type": "payment_intent"},
                "status": "paid",
            }
        ],
        "has_more": False,
    }
    (sale,) = read(s.event("invoice.paid", invoice))
    assert sale.external_id == "pi_3QmTinv0001"


def test_a_paid_payment_mode_checkout_is_a_sale_keyed_by_its_payment_intent() -> None:
    session = s.checkout_session(amount=2500, client_reference_id="bob")
    (sale,) = read(s.event("checkout.session.completed", session, created=1_767_225_600))
    assert sale == SaleCommand(
        "pi_3QmTcheckout0001",
        "default",
        Customer("bob", "bob@example.com", "cus_RfT0bob000001"),
        2500,
        "USD",
        datetime(2026, 1, 1, tzinfo=UTC),
        SaleKind.PURCHASE,
    )


def test_the_metadata_user_wins_over_the_client_reference_id() -> None:
    session = s.checkout_session(client_reference_id="x", metadata={"referrals_user_id": "bob"})
    (sale,) = read(s.event("checkout.session.completed", session))
    assert sale.customer.user_id == "bob"


@pytest.mark.parametrize(
    "session",
    [
        s.checkout_session(mode="subscription"),  # its invoice.paid is the sale
        s.checkout_session(mode="setup", payment_intent=None, amount=0),
        s.checkout_session(payment_status="unpaid"),  # paid later: async_payment_succeeded
    ],
)
def test_a_subscription_setup_or_unpaid_checkout_is_no_sale(session: dict[str, Any]) -> None:
    assert read(s.event("checkout.session.completed", session)) == []


def test_an_async_payment_that_succeeded_is_the_sale() -> None:
    session = s.checkout_session()
    (sale,) = read(s.event("checkout.session.async_payment_succeeded", session))
    assert sale.external_id == "pi_3QmTcheckout0001"


def test_a_charge_refunded_with_its_refunds_listed_is_one_refund_each() -> None:
    refunds = [
        s.refund("re_2", 700, charge="ch_1", payment_intent="pi_1"),
        s.refund("re_1", 500, charge="ch_1", payment_intent="pi_1"),
        s.refund("re_0", 900, charge="ch_1", payment_intent="pi_1", status="failed"),
    ]
    charge = s.charge("ch_1", 2500, amount_refunded=1200, payment_intent="pi_1", refunds=refunds)
    found = read(s.event("charge.refunded", charge))
    assert [(r.external_id, r.amount_minor, r.refunded_total) for r in found] == [
        ("re_2", 700, 1200),
        ("re_1", 500, 1200),
    ]
    assert all(r.sale_refs == ("pi_1", "ch_1") for r in found)


def test_a_charge_refunded_without_its_list_is_the_total_refunded() -> None:
    charge = s.charge("ch_1", 2500, amount_refunded=1200, payment_intent="pi_1")
    (refund,) = read(s.event("charge.refunded", charge, created=1_767_225_600))
    assert refund == RefundCommand(("pi_1", "ch_1"), datetime(2026, 1, 1, tzinfo=UTC), "ch_1", 1200)


def test_a_charge_of_an_older_api_version_finds_its_invoice_too() -> None:
    charge = s.charge("ch_1", payment_intent="pi_1", amount_refunded=100) | {"invoice": "in_1"}
    (refund,) = read(s.event("charge.refunded", charge))
    assert refund.sale_refs == ("pi_1", "in_1", "ch_1")


def test_a_dispute_holds_the_sale_of_its_payment() -> None:
    (hold,) = read(s.event("charge.dispute.created", s.dispute("ch_1", "pi_1")))
    assert hold == HoldCommand(("pi_1", "ch_1"), "Stripe dispute dp_1QmTdispute0001 (fraudulent)")


def test_an_invoice_payment_links_its_payment_intent_to_the_invoice() -> None:
    paid = s.invoice_payment("in_1", "pi_1")
    assert read(s.event("invoice_payment.paid", paid)) == [LinkCommand("pi_1", "in_1")]
    out_of_band = paid | {"payment": {"payment_record": "pr_1", "type": "payment_record"}}
    assert read(s.event("invoice_payment.paid", out_of_band)) == []
    with pytest.raises(InvalidInput) as raised:
        read(s.event("invoice_payment.paid", paid | {"invoice": None}))
    assert raised.value.field == "data.object.invoice"


@pytest.mark.parametrize(
    "type", ["customer.created", "invoice.finalized", "payment_intent.succeeded", "ping"]
)
def test_other_events_ask_nothing(type: str) -> None:
    assert read(s.event(type, {"id": "x_1", "object": "thing"})) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_paid": "49.00"}, "data.object.amount_paid"),
        ({"amount_paid": -1}, "data.object.amount_paid"),
        ({"amount_paid": True}, "data.object.amount_paid"),
        ({"currency": "dollars"}, "data.object.currency"),
        ({"id": None}, "data.object.id"),
        (
            {"metadata": {"referrals_user_id": "bob smith"}},
            "data.object.metadata.referrals_user_id",
        ),
        ({"metadata": "x"}, "data.object.metadata"),
    ],
)
def test_a_malformed_object_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        read(s.event("invoice.paid", s.invoice() | change))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ({"id": "evt_1", "type": "invoice.paid", "created": 1}, "data.object"),
        ({"id": "evt_1", "created": 1, "data": {"object": {}}}, "type"),
        ({"id": "evt_1", "type": "x", "created": "now", "data": {"object": {}}}, "created"),
    ],
)
def test_a_malformed_envelope_names_its_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        envelope(payload)
    assert raised.value.field == field
