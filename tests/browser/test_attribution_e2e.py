"""Attribution and revenue end to end, as a product meets it: a visitor follows Alice's
tracked link in Chromium, the snippet carries the click into the product's signup, a
signed Stripe `invoice.paid` pays Alice a share of Bob's first invoice, a month's payout
run pays it, then a `charge.refunded` of that invoice's payment takes the share back as
a clawback line in the next month's report, beside the share of Bob's renewal.

The server runs on a clock the test moves (a payout run pays an ended month); Stripe's
events are signed with the real time, as Stripe signs them."""

from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page

from tests import stripe_payloads as s
from tests.browser.conftest import LiveServer
from tests.browser.test_tracked_links import Landing, follow_link, landing, sign_up
from tests.clocks import FixedClock

__all__ = ["landing"]  # the product's site, a fixture of the tracked-link tests

SHOP = {
    "id": "shop",
    "name": "Shop",
    "rules": {
        "tiers": [{"threshold": 1, "reward_cents": 500}],
        "share": {"tiers": [{"threshold": 1, "bps": 1000}], "months": 0, "ceiling_cents": 0},
    },
}
WEBHOOK = "/v1/integrations/stripe/webhook"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stripe_webhook_secret": s.SECRET, "stripe_program": "shop"}


@pytest.fixture
def live_clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 6, 12, tzinfo=UTC))


def stripe(live: LiveServer, event: dict[str, Any]) -> Any:
    payload = s.body(event)
    headers = {"Stripe-Signature": s.signature(payload), "Content-Type": "application/json"}
    with live.api() as api:
        answer = api.post(WEBHOOK, content=payload, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["outcomes"]


def pay(live: LiveServer, period: str) -> list[str]:
    """Run the period's payout; its report's lines (the header left out)."""
    with live.api() as api:
        run = api.post("/v1/payouts", json={"period": period})
        assert run.status_code == 200, run.text
        report = api.get(f"/v1/payouts/{period}/report")
    assert report.status_code == 200
    return report.text.splitlines()[1:]


def test_a_tracked_click_a_stripe_sale_and_its_refund_reach_the_payout_reports(
    page: Page, live: LiveServer, landing: Landing, live_clock: FixedClock
) -> None:
    with live.api() as api:
        program = SHOP | {"landing_url": landing.origin + "/welcome"}
        assert api.post("/v1/programs", json=program).status_code == 201
        enrolled = api.post(
            "/v1/programs/shop/referrers", json={"user_id": "alice", "code": "ALICE"}
        )
        assert enrolled.status_code == 201, enrolled.text

    click_id = follow_link(page, live, landing, "/welcome")
    referral = sign_up(page, "bob")["referral"]
    assert (referral["program_id"], referral["click_id"]) == ("shop", click_id)

    # Bob's first invoice, $100.00, paid now; its payment named apart (Stripe since basil).
    paid_at = int(live_clock.now().timestamp())
    invoice = s.invoice("in_e2e", 10_000, metadata={"referrals_user_id": "bob"}, paid_at=paid_at)
    assert [o["result"] for o in stripe(live, s.event("invoice.paid", invoice))] == ["recorded"]
    payment = s.invoice_payment("in_e2e", "pi_e2e", 10_000)
    stripe(live, s.event("invoice_payment.paid", payment, n=2))

    live_clock.moment = datetime(2027, 1, 2, tzinfo=UTC)
    # December pays Alice's $5.00 signup reward and her 10 % of the invoice together.
    assert pay(live, "2026-12") == ["2026-12,alice,2,1500,15.00,USD,shop"]

    refund = s.refund("re_e2e", 10_000, charge="ch_e2e", payment_intent="pi_e2e")
    charge = s.charge(
        "ch_e2e", 10_000, amount_refunded=10_000, payment_intent="pi_e2e", refunds=[refund]
    )
    outcomes = stripe(live, s.event("charge.refunded", charge, n=3))
    assert [o["result"] for o in outcomes] == ["recorded"]

    # Bob renews in January, $300.00: Alice's share of it, $30.00.
    live_clock.moment = datetime(2027, 1, 10, tzinfo=UTC)
    renewal = s.invoice(
        "in_e2e_2",
        30_000,
        billing_reason="subscription_cycle",
        metadata={"referrals_user_id": "bob"},
        paid_at=int(live_clock.now().timestamp()),
    )
    stripe(live, s.event("invoice.paid", renewal, n=4))

    live_clock.moment = datetime(2027, 2, 2, tzinfo=UTC)
    # January pays the renewal's share and takes the refunded one back, a line each (a
    # clawback beyond what a run pays the user would wait for later rewards instead).
    assert pay(live, "2027-01") == [
        "2027-01,alice,1,3000,30.00,USD,shop",
        "2027-01,alice,1,-1000,-10.00,USD,shop",
    ]
    # A replayed refund event changes nothing.
    stripe(live, s.event("charge.refunded", charge, n=3))
    with live.api() as api:
        alice = api.get("/v1/programs/shop/referrers/alice").json()
    assert alice["earned_cents"] == 500 + 3000
