"""The events a sale's revenue share announces, written in the same commit as the change
they describe, on every store: `share.earned`, `share.refunded`, `share.held`,
`share.approved`, `share.rejected`."""

from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.domain.errors import CurrencyMismatch
from referrals.domain.model import Event
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.domain.sales import SaleKind, ShareTier, ShareTiers
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Store
from referrals.services import payouts
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.sales import (
    RefundIn,
    SaleIn,
    hold_sale,
    record_refund,
    record_sale,
    review_share,
)
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

START = datetime(2026, 1, 10, tzinfo=UTC)
# 10 % of each sale, and no reward for the signup itself.
TEN_PERCENT = RuleVersion(
    tiers=TierSchedule((Tier(1, 0),)), share_tiers=ShareTiers((ShareTier(1, 1000),))
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def referred(store: Store, clock: FixedClock) -> Store:
    """bob, referred by alice, in a program paying 10 % of bob's sales."""
    ensure_default_program(store, clock, TEN_PERCENT)
    sign_up(store, clock, TEN_PERCENT, "bob", enroll(store, clock, "alice").referrer.code)
    clock.advance(hours=1)
    return store


def sale(external_id: str = "in_1", user: str = "bob", currency: str = "USD") -> SaleIn:
    return SaleIn(external_id, user, 10_000, currency, START, SaleKind.PURCHASE)


def share_events(store: Store) -> list[Event]:
    """The share events, in no particular order (a fixed clock mints ids at random)."""
    with store.read() as uow:
        return [e for e in uow.outbox.list(None, 100) if e.type.startswith("share.")]


def the(store: Store, kind: str) -> Event:
    """The one share event of type `kind`."""
    (event,) = [e for e in share_events(store) if e.type == kind]
    return event


def data(event: Event) -> dict[str, Any]:
    return dict(event.payload)


def test_a_sale_earning_a_share_announces_it(referred: Store, clock: FixedClock) -> None:
    outcome = record_sale(referred, clock, sale())
    assert outcome.reward is not None
    (event,) = share_events(referred)
    assert event.type == "share.earned"
    assert data(event) == {
        "reward_id": outcome.reward.id,
        "sale_id": "in_1",
        "program_id": "default",
        "currency": "USD",
        "referral_id": outcome.reward.referral_id,
        "referrer_id": "alice",
        "referee_id": "bob",
        "share_cents": 1000,
        "status": "pending",
        "sale_amount_minor": 10_000,
        "occurred_at": START.isoformat(),
    }


def test_a_replayed_sale_announces_nothing_more(referred: Store, clock: FixedClock) -> None:
    record_sale(referred, clock, sale())
    assert record_sale(referred, clock, sale()).replayed
    assert [e.type for e in share_events(referred)] == ["share.earned"]


def test_a_sale_of_a_user_nobody_referred_announces_nothing(
    referred: Store, clock: FixedClock
) -> None:
    assert record_sale(referred, clock, sale(user="carol")).reward is None
    assert share_events(referred) == []


def test_a_refused_sale_writes_no_event(referred: Store, clock: FixedClock) -> None:
    with pytest.raises(CurrencyMismatch):
        record_sale(referred, clock, sale(currency="EUR"))
    assert share_events(referred) == []


def test_a_partial_refund_announces_what_it_took_back(referred: Store, clock: FixedClock) -> None:
    earned = record_sale(referred, clock, sale()).reward
    refund = record_refund(referred, clock, RefundIn("in_1", 2500, external_id="re_1")).refund
    event = the(referred, "share.refunded")
    assert earned is not None and data(event) == {
        "reward_id": earned.id,
        "sale_id": "in_1",
        "program_id": "default",
        "currency": "USD",
        "referral_id": earned.referral_id,
        "referrer_id": "alice",
        "referee_id": "bob",
        "share_cents": 750,  # what is left to pay
        "status": "pending",
        "refund_id": refund.id,
        "refund_external_id": "re_1",
        "refund_minor": 2500,
        "taken_back_cents": 250,
        "clawback_id": None,
    }


def test_a_full_refund_of_an_unpaid_share_announces_it_reversed(
    referred: Store, clock: FixedClock
) -> None:
    record_sale(referred, clock, sale())
    record_refund(referred, clock, RefundIn("in_1", 10_000))
    event = the(referred, "share.refunded")
    assert (data(event)["status"], data(event)["share_cents"]) == ("reversed", 0)
    assert data(event)["taken_back_cents"] == 1000


def test_a_refund_after_payment_announces_the_clawback(referred: Store, clock: FixedClock) -> None:
    record_sale(referred, clock, sale())
    clock.moment = datetime(2026, 2, 2, tzinfo=UTC)
    payouts.run_payout(referred, MemoryReports(), clock, Period(2026, 1))
    outcome = record_refund(referred, clock, RefundIn("in_1", 4000, external_id="re_1"))
    assert outcome.clawback is not None
    event = the(referred, "share.refunded")
    assert {k: data(event)[k] for k in ("status", "share_cents", "clawback_id")} == {
        "status": "clawed_back",
        "share_cents": 1000,  # paid whole; the next run deducts the clawback
        "clawback_id": outcome.clawback.id,
    }
    assert data(event)["taken_back_cents"] == 400


def test_a_refund_that_takes_nothing_announces_nothing(referred: Store, clock: FixedClock) -> None:
    record_sale(referred, clock, sale(user="carol"))  # nobody's: no share to take from
    record_refund(referred, clock, RefundIn("in_1", 100))
    assert share_events(referred) == []


def test_a_dispute_then_an_approval_are_announced(referred: Store, clock: FixedClock) -> None:
    record_sale(referred, clock, sale())
    hold_sale(referred, clock, "in_1", "dispute du_1 opened")
    hold_sale(referred, clock, "in_1", "dispute du_1 opened")  # held already: no new event
    review_share(referred, clock, "key-1", "in_1", True, "dispute won")
    assert len(share_events(referred)) == 3  # earned, held once, approved
    held, approved = the(referred, "share.held"), the(referred, "share.approved")
    assert (data(held)["status"], data(held)["reason"]) == ("held", "dispute du_1 opened")
    assert (data(approved)["status"], data(approved)["reason"]) == ("pending", "dispute won")


def test_a_rejected_share_is_announced(referred: Store, clock: FixedClock) -> None:
    record_sale(referred, clock, sale())
    hold_sale(referred, clock, "in_1", "dispute du_1 opened")
    review_share(referred, clock, "key-1", "in_1", False, "dispute lost")
    event = the(referred, "share.rejected")
    assert (data(event)["status"], data(event)["share_cents"]) == ("rejected", 1000)
