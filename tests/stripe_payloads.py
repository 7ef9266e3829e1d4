"""Stripe webhook events shaped as Stripe sends them (API version 2025-03-31.basil and
later: an invoice names no payment intent or charge, a charge no invoice, and its
`refunds` list is left out unless expanded), and signed as Stripe signs them.

Each builder gives the whole event; tests change the fields a scenario is about.
"""

import hashlib
import hmac
import json
import time
from typing import Any

API_VERSION = "2025-03-31.basil"
SECRET = "whsec_" + "test0signing0secret0of0the0endpoint0"
Json = dict[str, Any]


def signature(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends: the time, and the HMAC-SHA256 (keyed
    by the whole secret, prefix included) of `<time>.<body>` in hex, as scheme v1."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def body(event: Json) -> bytes:
    return json.dumps(event, indent=2).encode()  # Stripe's bodies are indented JSON


def soon() -> int:
    """The next whole second: after anything a test did a moment before (a signup), as a
    customer pays after signing up; well within the clock skew a sale's time may have."""
    return int(time.time()) + 1


def event(type: str, obj: Json, *, created: int | None = None, n: int = 1) -> Json:
    return {
        "id": f"evt_1QmT{n:04d}LkdIwHu7ixAbCdEfGh",
        "object": "event",
        "api_version": API_VERSION,
        "created": soon() if created is None else created,
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def invoice(
    invoice_id: str = "in_1QmTinvoice0001",
    amount: int = 4900,
    *,
    currency: str = "usd",
    billing_reason: str = "subscription_create",
    email: str | None = "bob@example.com",
    customer: str = "cus_RfT0bob000001",
    metadata: Json | None = None,
    subscription_metadata: Json | None = None,
    paid_at: int | None = None,
) -> Json:
    now = int(time.time()) - 10
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Example SaaS",
        "account_tax_ids": None,
        "amount_due": amount,
        "amount_overpaid": 0,
        "amount_paid": amount,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": now - 60,
        "currency": currency,
        "custom_fields": None,
        "customer": customer,
        "customer_address": None,
        "customer_email": email,
        "customer_name": "Bob",
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": now - 60,
        "ending_balance": 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1Qm/test_YWNjdF8x",
        "invoice_pdf": "https://pay.stripe.com/invoice/acct_1Qm/test_YWNjdF8x/pdf",
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "il_1QmTline0001",
                    "object": "line_item",
                    "amount": amount,
                    "currency": currency,
                    "description": "1 × Pro (at $49.00 / month)",  # noqa: RUF001 (as Stripe writes it)
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "parent": {
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": "sub_1QmTsub0001",
                            "subscription_item": "si_RfT0item0001",
                        },
                        "type": "subscription_item_details",
                    },
                    "period": {"end": now + 30 * 86400, "start": now},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "price_details": {"price": "price_1QmTpro", "product": "prod_RfT0pro"},
                        "type": "price_details",
                        "unit_amount_decimal": str(amount),
                    },
                    "quantity": 1,
                    "taxes": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": metadata or {},
        "next_payment_attempt": None,
        "number": "A1B2C3D4-0001",
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": subscription_metadata or {},
                "subscription": "sub_1QmTsub0001",
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "paid",
        "status_transitions": {
            "finalized_at": now - 60,
            "marked_uncollectible_at": None,
            "paid_at": soon() if paid_at is None else paid_at,
            "voided_at": None,
        },
        "subtotal": amount,
        "subtotal_excluding_tax": amount,
        "test_clock": None,
        "total": amount,
        "total_discount_amounts": [],
        "total_excluding_tax": amount,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def checkout_session(
    session_id: str = "cs_test_a1QmTsession0001",
    amount: int = 2500,
    *,
    mode: str = "payment",
    payment_status: str = "paid",
    payment_intent: str | None = "pi_3QmTcheckout0001",
    client_reference_id: str | None = None,
    email: str | None = "bob@example.com",
    metadata: Json | None = None,
    currency: str = "usd",
) -> Json:
    now = int(time.time()) - 10
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": True},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": None,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": {"shipping_details": None},
        "consent": None,
        "consent_collection": None,
        "created": now - 120,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": "cus_RfT0bob000001",
        "customer_creation": "if_required",
        "customer_details": {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": "94107",
                "state": None,
            },
            "email": email,
            "name": "Bob",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": None,
        "discounts": [],
        "expires_at": now + 86400,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": {}},
        "livemode": False,
        "locale": None,
        "metadata": metadata or {},
        "mode": mode,
        "payment_intent": payment_intent if mode == "payment" else None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "complete",
        "submit_type": None,
        "subscription": "sub_1QmTsub0001" if mode == "subscription" else None,
        "success_url": "https://example.com/thanks",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,
        "wallet_options": None,
    }


def refund(
    refund_id: str,
    amount: int,
    *,
    charge: str,
    payment_intent: str | None,
    status: str = "succeeded",
) -> Json:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_3QmTrefund",
        "charge": charge,
        "created": int(time.time()) - 3,
        "currency": "usd",
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def charge(
    charge_id: str = "ch_3QmTcharge0001",
    amount: int = 2500,
    *,
    amount_refunded: int = 0,
    payment_intent: str | None = "pi_3QmTcheckout0001",
    refunds: list[Json] | None = None,
    email: str | None = "bob@example.com",
) -> Json:
    """A charge; `refunds` given: with the list included (as when expanded), else without
    it, as events have sent it since 2022-11-15."""
    now = int(time.time()) - 30
    found: Json = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": "txn_3QmTcharge",
        "billing_details": {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": "94107",
                "state": None,
            },
            "email": email,
            "name": "Bob",
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "EXAMPLE SAAS",
        "captured": True,
        "created": now,
        "currency": "usd",
        "customer": "cus_RfT0bob000001",
        "description": None,
        "destination": None,
        "dispute": None,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": payment_intent,
        "payment_method": "pm_1QmTcard0001",
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2030,
                "funding": "credit",
                "last4": "4242",
                "network": "visa",
            },
            "type": "card",
        },
        "radar_options": {},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoV",
        "refunded": amount_refunded == amount,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }
    if refunds is not None:
        found["refunds"] = {
            "object": "list",
            "data": refunds,
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{charge_id}/refunds",
        }
    return found


def invoice_payment(
    invoice_id: str = "in_1QmTinvoice0001",
    payment_intent: str = "pi_3QmTinvoice0001",
    amount: int = 4900,
) -> Json:
    """The payment of an invoice, which Stripe names apart from it since 2025-03-31.basil."""
    now = int(time.time())
    return {
        "id": "inpay_1QmTpayment0001",
        "object": "invoice_payment",
        "amount_paid": amount,
        "amount_requested": amount,
        "created": now - 20,
        "currency": "usd",
        "invoice": invoice_id,
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": payment_intent, "type": "payment_intent"},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": now},
    }


def dispute(
    charge_id: str = "ch_3QmTcharge0001",
    payment_intent: str | None = "pi_3QmTcheckout0001",
    amount: int = 2500,
) -> Json:
    now = int(time.time()) - 5
    return {
        "id": "dp_1QmTdispute0001",
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": now,
        "currency": "usd",
        "enhanced_eligibility_types": [],
        "evidence": {
            "customer_email_address": None,
            "product_description": None,
            "uncategorized_text": None,
        },
        "evidence_details": {
            "due_by": now + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": True,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": "needs_response",
    }
