"""A verified Stripe event applied to the ledger: its sales, refunds and holds recorded by
the same use cases as `POST /v1/sales` and `/v1/refunds` (services.sales).

Replays change nothing: a sale recorded under its id is left as it is (the customer is
not matched again, so a user who signed up since cannot make a replay conflict), and a
refund is recorded once under Stripe's refund id (or, when the event does not list the
refunds, under the charge and the total refunded, for what that total adds).

A refusal that Stripe delivering the event again cannot change (a currency other than
the program's, a refund of a sale never recorded, an id recorded for another sale) is
reported in the outcome and logged, not raised: Stripe retries every answer but a 2xx
for three days, then disables the endpoint, and one event it cannot place must not stop
the others. What a retry can change (the storage down) is raised.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from referrals.domain.codes import is_valid_user_id
from referrals.domain.errors import DomainError, StorageUnavailable, Unavailable
from referrals.domain.model import ReferralStatus
from referrals.domain.sales import Sale
from referrals.ports import Clock, Store
from referrals.services.retry import retry_on_conflict
from referrals.services.sales import (
    RefundIn,
    SaleIn,
    hold_sale,
    record_refund,
    record_sale,
    review_share,
)
from referrals.services.stripe_events import (
    Command,
    HoldCommand,
    LinkCommand,
    RefundCommand,
    ReleaseCommand,
    SaleCommand,
    commands,
    envelope,
)

logger = logging.getLogger("referrals.stripe")

UNMATCHED = "stripe:"  # the user id of a sale whose customer matches no user
ACTOR = "stripe"  # who releases a share a dispute held, in the audit log


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one command did: `recorded`, `replayed` (nothing changed) or `ignored`
    (with why: a code of the refusal, or a sentence)."""

    action: str  # sale, refund, hold, release (a dispute closed), link (an alias of a sale)
    id: str  # the sale's (or refund's) external id
    result: str
    detail: str | None = None

    def to_dict(self) -> dict[str, str]:
        found = {"action": self.action, "id": self.id, "result": self.result}
        return found | ({"detail": self.detail} if self.detail else {})


@dataclass(frozen=True, slots=True)
class Applied:
    event_id: str
    type: str
    outcomes: Sequence[Outcome]


def apply_event(store: Store, clock: Clock, payload: Any, program: str) -> Applied:
    """Apply a verified event (its parsed JSON); `program` takes the sales whose
    metadata names none. InvalidInput, naming the field, for an event it cannot read."""
    event = envelope(payload)
    found = commands(event, program)  # reads the whole event before writing anything
    outcomes = [_apply(store, clock, command) for command in found]
    for outcome in outcomes:
        if outcome.result == "ignored":
            logger.warning(
                "stripe event %s (%s): %s %s ignored: %s",
                event.id,
                event.type,
                outcome.action,
                outcome.id,
                outcome.detail,
            )
    return Applied(event.id, event.type, outcomes)


ACTIONS = {
    SaleCommand: "sale",
    RefundCommand: "refund",
    HoldCommand: "hold",
    ReleaseCommand: "release",
}


def _apply(store: Store, clock: Clock, command: Command) -> Outcome:
    if isinstance(command, LinkCommand):
        return _link(store, command)
    action = ACTIONS[type(command)]
    subject = command.external_id if isinstance(command, SaleCommand) else command.sale_refs[0]
    try:
        if isinstance(command, SaleCommand):
            return _sale(store, clock, command)
        if isinstance(command, RefundCommand):
            return _refund(store, clock, command)
        if isinstance(command, ReleaseCommand):
            return _release(store, clock, command)
        return _hold(store, clock, command)
    except (StorageUnavailable, Unavailable):
        raise  # Stripe's retry will find the storage back
    except DomainError as refused:
        return Outcome(action, subject, "ignored", f"{refused.code}: {refused.detail}")


def _sale(store: Store, clock: Clock, command: SaleCommand) -> Outcome:
    with store.read() as uow:
        if uow.sales.get(command.external_id) is not None:
            return Outcome("sale", command.external_id, "replayed")
        user_id = command.customer.user_id
        if user_id is None and command.customer.email is not None:
            referral = uow.referrals.by_email(command.customer.email, program=command.program)
            user_id = referral.referee_id if referral is not None else None
    if user_id is None:  # stored unattributed, under the Stripe customer
        user_id = UNMATCHED + (command.customer.stripe_id or command.external_id)
        if not is_valid_user_id(user_id):
            user_id = UNMATCHED + command.external_id
    recorded = record_sale(
        store,
        clock,
        SaleIn(
            command.external_id,
            user_id,
            command.amount_minor,
            command.currency,
            command.occurred_at,
            command.kind,
            command.program,
        ),
    )
    return Outcome("sale", command.external_id, "replayed" if recorded.replayed else "recorded")


def _link(store: Store, command: LinkCommand) -> Outcome:
    def attempt() -> Outcome:
        with store.unit_of_work() as uow:
            linked = uow.sale_aliases.get(command.alias)
            if linked is None:
                uow.sale_aliases.add(command.alias, command.sale_external_id)
                uow.commit()
                return Outcome("link", command.alias, "recorded")
        if linked == command.sale_external_id:
            return Outcome("link", command.alias, "replayed")
        return Outcome("link", command.alias, "ignored", f"already an alias of {linked}")

    return retry_on_conflict(attempt)  # of two at once, the retry finds the other's


def _find_sale(store: Store, refs: Sequence[str]) -> Sale | None:
    """The first sale recorded under one of `refs`, or known by one of them as an alias."""
    with store.read() as uow:
        for ref in refs:
            sale = uow.sales.get(ref)
            if sale is not None:
                return sale
        for ref in refs:
            linked = uow.sale_aliases.get(ref)
            sale = uow.sales.get(linked) if linked is not None else None
            if sale is not None:
                return sale
    return None


def _refund(store: Store, clock: Clock, command: RefundCommand) -> Outcome:
    sale = _find_sale(store, command.sale_refs)
    if sale is None:
        detail = f"sale_not_found: no sale recorded under {', '.join(command.sale_refs)}"
        return Outcome("refund", command.sale_refs[0], "ignored", detail)
    external_id: str
    if command.external_id is not None:
        external_id, amount = command.external_id, command.amount_minor
        with store.read() as uow:
            if uow.sales.refund(external_id) is not None:
                return Outcome("refund", external_id, "replayed")
    else:
        # The event does not list its refunds: what its total adds to what is recorded,
        # under an id of that total, so the same event again adds nothing.
        external_id = f"{command.charge_id}/refunded/{command.refunded_total}"
        amount = command.refunded_total - sale.refunded_minor
    # Never more than Stripe says the charge refunded: a refund recorded both ways (the
    # endpoint's API version changed between two events) is not counted twice.
    if amount <= 0 or sale.refunded_minor + amount > command.refunded_total:
        return Outcome("refund", external_id, "replayed", "already recorded for the sale")
    recorded = record_refund(
        store, clock, RefundIn(sale.external_id, amount, external_id, command.occurred_at)
    )
    return Outcome("refund", external_id, "replayed" if recorded.replayed else "recorded")


def _hold(store: Store, clock: Clock, command: HoldCommand) -> Outcome:
    sale = _find_sale(store, command.sale_refs)
    if sale is None:
        detail = f"sale_not_found: no sale recorded under {', '.join(command.sale_refs)}"
        return Outcome("hold", command.sale_refs[0], "ignored", detail)
    held = hold_sale(store, clock, sale.external_id, command.reason)
    if held.held:
        return Outcome("hold", sale.external_id, "recorded")
    return Outcome("hold", sale.external_id, "ignored", "the sale has no share waiting to be paid")


def _release(store: Store, clock: Clock, command: ReleaseCommand) -> Outcome:
    """Release the share the closed dispute held, and no other hold: a share held with
    its referral by a fraud check waits for that review."""
    sale = _find_sale(store, command.sale_refs)
    if sale is None:
        detail = f"sale_not_found: no sale recorded under {', '.join(command.sale_refs)}"
        return Outcome("release", command.sale_refs[0], "ignored", detail)
    with store.read() as uow:
        share = uow.rewards.get(sale.reward_id) if sale.reward_id else None
    held_by_it = (
        share is not None
        and share.status is ReferralStatus.HELD
        and (share.note or "").partition(" (")[0] == command.held_as
    )
    if not held_by_it:
        return Outcome("release", sale.external_id, "replayed", "no share held by the dispute")
    review_share(store, clock, ACTOR, sale.external_id, approve=True, reason=command.reason)
    return Outcome("release", sale.external_id, "recorded")
