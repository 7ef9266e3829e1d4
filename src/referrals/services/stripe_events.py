"""Stripe's webhook events, read into what they mean here: sales, refunds and holds.

Pure: a verified event (the parsed JSON) in, commands out; the store is not touched
(`services.stripe_sync` applies them). The shapes read are those of Stripe's API
version 2025-03-31.basil and later (the stripe library's pinned 2026-10-28 included),
with the fields earlier versions had read where a payload still carries them:

- `invoice.paid` is a sale of the invoice's `amount_paid`; its kind is `renewal` for
  the later payments of a running subscription (`billing_reason` subscription_cycle,
  subscription_update, subscription_threshold) and `purchase` for anything else.
  A zero invoice (a trial) is no sale.
- `checkout.session.completed` (and `checkout.session.async_payment_succeeded`) is a
  sale of `amount_total` only for a session in `payment` mode that is paid. A
  subscription-mode session is paid by its subscription's first invoice, whose
  `invoice.paid` is the sale: counting the session as well would count it twice.
- `charge.refunded` is one refund per refund object in `charge.refunds.data`, each
  idempotent by its id (`re_...`). Since 2022-11-15 Stripe leaves that list out of
  the event unless expanded; then the refund is what `amount_refunded` adds to what
  is recorded for the sale, under an id made of the charge and that total.
- `charge.dispute.created` holds the reward of the disputed sale; `charge.dispute.closed`
  releases it (won), or records the disputed amount as a refund of the sale (lost).
- `invoice_payment.paid` (2025-03-31.basil and later) links an invoice's payment to
  the invoice: kept as an alias of the invoice's sale (ports.aliases), so that the
  refunds and disputes of its charge, which name only the payment, find the sale.

The sale id rule. A sale's external id is its PaymentIntent's id (`pi_...`) when the
object names one (a payment-mode session's `payment_intent`, an invoice's
`payments.data[].payment.payment_intent` when included, or `payment_intent` before
2025-03-31.basil), else the invoice's id (`in_...`) or the session's (`cs_...`). A
charge, a refund or a dispute finds its sale by the first of its `payment_intent`,
its `invoice` (before 2025-03-31.basil) and its charge id that names a recorded sale,
directly or through an alias.

The customer. A sale's user is, first, the object's metadata `referrals_user_id` (an
invoice also reads its subscription's metadata, which Stripe copies to
`parent.subscription_details.metadata`), then a session's `client_reference_id`; else
the email (`customer_email`, `customer_details.email`, a charge's
`billing_details.email`) matched case-insensitively with the email a referee signed
up with; else the sale is unattributed. The program is the metadata
`referrals_program`, else the configured one.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from referrals.domain.codes import is_valid_user_id
from referrals.domain.errors import InvalidInput
from referrals.domain.sales import MAX_AMOUNT, SaleKind

USER_KEY = "referrals_user_id"
PROGRAM_KEY = "referrals_program"
RENEWALS = frozenset({"subscription_cycle", "subscription_update", "subscription_threshold"})
MAX_ID = 128  # Stripe's ids are far shorter; a longer one is not an id we can store
# A refund Stripe has not given up on: pending ones count (Stripe's amount_refunded does).
LIVE_REFUNDS = frozenset({"succeeded", "pending", "requires_action"})


@dataclass(frozen=True, slots=True)
class Customer:
    """Who paid, as the object says: a user id given by the product, and an email."""

    user_id: str | None
    email: str | None
    stripe_id: str | None  # the Stripe customer (`cus_...`), for an unattributed sale


@dataclass(frozen=True, slots=True)
class SaleCommand:
    external_id: str
    program: str
    customer: Customer
    amount_minor: int
    currency: str
    occurred_at: datetime
    kind: SaleKind


@dataclass(frozen=True, slots=True)
class RefundCommand:
    """A refund of the first recorded sale among `sale_refs`. With `external_id` it is
    Stripe's refund of `amount_minor`; without, it brings the sale's refunded total up
    to `refunded_total`. Either way the sale's refunds never pass `refunded_total`, the
    charge's `amount_refunded`."""

    sale_refs: tuple[str, ...]
    occurred_at: datetime
    charge_id: str
    refunded_total: int
    external_id: str | None = None
    amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class LinkCommand:
    """The sale `sale_external_id` is also known as `alias` (a payment of an invoice)."""

    alias: str
    sale_external_id: str


@dataclass(frozen=True, slots=True)
class HoldCommand:
    sale_refs: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseCommand:
    """A dispute closed: the share it held (and only a share it held, whose hold reason
    starts with `held_as`) waits for its payout again."""

    sale_refs: tuple[str, ...]
    held_as: str
    reason: str


Command = SaleCommand | RefundCommand | HoldCommand | LinkCommand | ReleaseCommand


@dataclass(frozen=True, slots=True)
class Event:
    """An event's envelope: what every event has, whatever its type."""

    id: str
    type: str
    created: datetime
    object: Mapping[str, Any]


def envelope(payload: Any) -> Event:
    """The event's id, type, time and object; InvalidInput naming the field if absent."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("a Stripe event is a JSON object", field="body")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise InvalidInput("a Stripe event has a data.object", field="data.object")
    return Event(
        _id(payload, "id", ""),
        _text(payload, "type", ""),
        _time(payload, "created", ""),
        obj,
    )


def commands(event: Event, program: str) -> list[Command]:
    """What `event` asks of the ledger (nothing for an event ignored here); `program`
    is the one its sales go to unless their metadata names another."""
    reader = READERS.get(event.type)
    return reader(event, program) if reader else []


def _invoice_paid(event: Event, program: str) -> list[Command]:
    invoice = event.object
    where = "data.object"
    amount = _amount(invoice, "amount_paid", where)
    if amount == 0:
        return []
    reason = invoice.get("billing_reason")
    kind = SaleKind.RENEWAL if reason in RENEWALS else SaleKind.PURCHASE
    transitions = invoice.get("status_transitions")
    occurred_at = event.created  # when Stripe made the event, if the invoice says no time
    if isinstance(transitions, Mapping) and transitions.get("paid_at") is not None:
        occurred_at = _time(transitions, "paid_at", f"{where}.status_transitions")
    subscription = _subscription_metadata(invoice)
    metadata = {**subscription, **_metadata(invoice, where)}  # the invoice's own wins
    customer = Customer(
        _user_id(metadata.get(USER_KEY), where),
        _email(invoice.get("customer_email")),
        _ref(invoice.get("customer")),
    )
    external_id = _invoice_payment_intent(invoice) or _id(invoice, "id", where)
    return [
        SaleCommand(
            external_id,
            _program(metadata, program, where),
            customer,
            amount,
            _currency(invoice, where),
            occurred_at,
            kind,
        )
    ]


def _checkout_paid(event: Event, program: str) -> list[Command]:
    session = event.object
    where = "data.object"
    # Subscription mode: the first invoice's invoice.paid is the sale. Setup: no payment.
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        return []
    amount = _amount(session, "amount_total", where)
    if amount == 0:
        return []
    metadata = _metadata(session, where)
    details = session.get("customer_details")
    email = details.get("email") if isinstance(details, Mapping) else None
    customer = Customer(
        _user_id(metadata.get(USER_KEY), where)
        or _user_id(session.get("client_reference_id"), where, "client_reference_id"),
        _email(email or session.get("customer_email")),
        _ref(session.get("customer")),
    )
    external_id = _ref(session.get("payment_intent")) or _id(session, "id", where)
    return [
        SaleCommand(
            external_id,
            _program(metadata, program, where),
            customer,
            amount,
            _currency(session, where),
            event.created,  # the session completed when the event was made
            SaleKind.PURCHASE,
        )
    ]


def _charge_refunded(event: Event, program: str) -> list[Command]:
    charge = event.object
    where = "data.object"
    charge_id = _id(charge, "id", where)
    refs = _charge_refs(charge, charge_id)
    total = _amount(charge, "amount_refunded", where)
    listed = charge.get("refunds")
    complete = isinstance(listed, Mapping) and not listed.get("has_more")
    data = listed.get("data") if isinstance(listed, Mapping) else None
    if complete and isinstance(data, list) and data:
        found: list[Command] = []
        for n, refund in enumerate(data):
            at = f"{where}.refunds.data.{n}"
            if not isinstance(refund, Mapping):
                raise InvalidInput("a refund is an object", field=at)
            if refund.get("status") not in LIVE_REFUNDS:
                continue
            found.append(
                RefundCommand(
                    refs,
                    _time(refund, "created", at),
                    charge_id,
                    total,
                    external_id=_id(refund, "id", at),
                    amount_minor=_amount(refund, "amount", at),
                )
            )
        return found
    # The list left out (or cut short): the total refunded is what Stripe says.
    return [RefundCommand(refs, event.created, charge_id, total)]


def _dispute_created(event: Event, program: str) -> list[Command]:
    dispute_id, _, refs = _disputed(event.object)
    reason = event.object.get("reason")
    why = _held_as(dispute_id) + (f" ({reason})" if isinstance(reason, str) else "")
    return [HoldCommand(refs, why[:200])]


def _dispute_closed(event: Event, program: str) -> list[Command]:
    """Won (or an inquiry closed): the share the dispute held is released. Lost: the
    disputed amount left the merchant as a refund would, so it is recorded as one (under
    the dispute's id, once) after the release: the share is lowered, or clawed back if
    a run paid it before the dispute."""
    dispute_id, charge_id, refs = _disputed(event.object)
    status = event.object.get("status")
    release = ReleaseCommand(refs, _held_as(dispute_id), f"{_held_as(dispute_id)} {status}")
    if status in ("won", "warning_closed"):
        return [release]
    if status != "lost":
        return []
    amount = _amount(event.object, "amount", "data.object")
    lost = RefundCommand(refs, event.created, charge_id, MAX_AMOUNT, f"{dispute_id}/lost", amount)
    return [release, lost]


def _disputed(dispute: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """A dispute's id, its charge's, and where its sale may be recorded."""
    where = "data.object"
    dispute_id = _id(dispute, "id", where)
    charge_id = _ref(dispute.get("charge"))
    if charge_id is None:
        raise InvalidInput("a dispute names its charge", field=f"{where}.charge")
    refs = tuple(dict.fromkeys(r for r in (_ref(dispute.get("payment_intent")), charge_id) if r))
    return dispute_id, charge_id, refs


def _held_as(dispute_id: str) -> str:
    return f"Stripe dispute {dispute_id}"


def _invoice_payment_paid(event: Event, program: str) -> list[Command]:
    paid = event.object
    where = "data.object"
    payment = paid.get("payment")
    if paid.get("status") != "paid" or not isinstance(payment, Mapping):
        return []
    intent = _ref(payment.get("payment_intent")) or _ref(payment.get("charge"))
    if intent is None:  # paid out of band (a payment record): no charge will name it
        return []
    invoice = _ref(paid.get("invoice"))
    if invoice is None:
        raise InvalidInput("an invoice payment names its invoice", field=f"{where}.invoice")
    return [LinkCommand(intent, invoice)]


READERS = {
    "invoice.paid": _invoice_paid,
    "checkout.session.completed": _checkout_paid,
    "checkout.session.async_payment_succeeded": _checkout_paid,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "invoice_payment.paid": _invoice_payment_paid,
}


def _charge_refs(charge: Mapping[str, Any], charge_id: str) -> tuple[str, ...]:
    """Where a charge's sale may be recorded, in the order the sale id rule gives."""
    refs = (_ref(charge.get("payment_intent")), _ref(charge.get("invoice")), charge_id)
    return tuple(dict.fromkeys(r for r in refs if r))


def _invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The invoice's PaymentIntent, where the payload names it: the field of versions
    before 2025-03-31.basil, or its default payment when `payments` is included."""
    direct = _ref(invoice.get("payment_intent"))
    if direct:
        return direct
    payments = invoice.get("payments")
    data = payments.get("data") if isinstance(payments, Mapping) else None
    if not isinstance(data, list):
        return None
    paid = [
        p
        for p in data
        if isinstance(p, Mapping)
        and p.get("status") == "paid"
        and isinstance(p.get("payment"), Mapping)
    ]
    # One payment pays most invoices; of several (partial payments), the default one.
    chosen = next((p for p in paid if p.get("is_default")), paid[0] if len(paid) == 1 else None)
    return _ref(chosen["payment"].get("payment_intent")) if chosen else None


def _subscription_metadata(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The subscription's metadata as of the invoice (Stripe copies it there)."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if not isinstance(details, Mapping):  # before 2025-03-31.basil, on the invoice itself
        details = invoice.get("subscription_details")
    metadata = details.get("metadata") if isinstance(details, Mapping) else None
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def _metadata(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata is an object", field=f"{where}.metadata")
    return dict(metadata)


def _ref(value: Any) -> str | None:
    """An id, or an expanded object's id; None if absent."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None


def _id(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or _ref(value) is None:
        raise InvalidInput(f"{key} is a Stripe id", field=_field(where, key))
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} is a string", field=_field(where, key))
    return value


def _amount(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    # bool is an int in Python; JSON's true is no amount.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"{key} is a whole number of minor units", field=_field(where, key))
    return value


def _time(obj: Mapping[str, Any], key: str, where: str) -> datetime:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**37:
        raise InvalidInput(f"{key} is a Unix time in seconds", field=_field(where, key))
    return datetime.fromtimestamp(value, UTC)


def _currency(obj: Mapping[str, Any], where: str) -> str:
    value = obj.get("currency")
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidInput("currency is a three-letter ISO code", field=_field(where, "currency"))
    return value.upper()


def _user_id(value: Any, where: str, key: str = f"metadata.{USER_KEY}") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not is_valid_user_id(value):
        raise InvalidInput(
            "a user id: 1-128 characters of [A-Za-z0-9._:@+-]", field=_field(where, key)
        )
    return value


def _email(value: Any) -> str | None:
    return value if isinstance(value, str) and "@" in value and len(value) <= 254 else None


def _program(metadata: Mapping[str, Any], default: str, where: str) -> str:
    value = metadata.get(PROGRAM_KEY)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{PROGRAM_KEY} is a string", field=f"{where}.metadata.{PROGRAM_KEY}")
    return value


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
