"""Programs in Chromium, as an operator meets them: a program with some history, a rule
proposed and simulated on the dashboard, the version scheduled and coming into force,
and the next signup's receipt naming it."""

import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_dashboard import referral, signed_in, signup

PARTNERS = {
    "id": "partners",
    "name": "Partner program",
    "rules": {"tiers": [{"threshold": 1, "reward_cents": 1000}]},
}
# A version is scheduled at least 5 s ahead (services.programs.SCHEDULE_LEAD).
LEAD = timedelta(seconds=6)


def test_propose_simulate_and_activate_a_rule_then_a_receipt_names_it(
    page: Page, live: LiveServer
) -> None:
    with live.api() as api:
        assert api.post("/v1/programs", json=PARTNERS).status_code == 201
        enrolled = api.post("/v1/programs/partners/referrers", json={"user_id": "alice"})
        code = enrolled.json()["code"]
    for n in range(3):
        signup(live, f"p{n}", code)

    signed_in(page, live)
    page.click("nav >> text=Programs")
    section = page.locator('section[data-program="partners"]')
    section.locator("input[name=tiers]").fill("1:2500")
    section.locator("form.simulate button").click()

    earned = page.locator('#totals tr[data-row="2"]')  # earned, after the caps
    expect(earned.locator("td.actual")).to_have_text("$30.00")
    expect(earned.locator("td.simulated")).to_have_text("$75.00")
    expect(page.locator('#movers tr[data-referrer="alice"] td.change')).to_have_text("$45.00")

    # Activate it: the proposal as the program's next version, from a moment ahead.
    starts = datetime.now(UTC) + LEAD
    rules = {"tiers": [{"threshold": 1, "reward_cents": 2500}]}
    with live.api() as api:
        body = {"effective_from": starts.isoformat(), "rules": rules}
        scheduled = api.post("/v1/programs/partners/rules", json=body)
        assert scheduled.status_code == 201, scheduled.text
    page.click("nav >> text=Programs")
    version = page.locator('section[data-program="partners"] tr[data-version="2"]')
    expect(version).to_contain_text("scheduled")

    time.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.5)
    page.reload()
    expect(version).to_contain_text("in force")
    after = signup(live, "p3", code)
    assert after["reward_cents"] == 2500  # the fourth referral: v1 would pay $10
    receipt = referral(live, after["id"])["receipt"]
    assert (receipt["program"], receipt["rule_version"]) == ("partners", 2)
    with live.api() as api:  # what was earned before keeps its price
        listed = api.get("/v1/programs/partners/referrers/alice/referrals").json()["items"]
    assert [(r["referee_id"], r["reward_cents"]) for r in listed] == [
        ("p0", 1000),
        ("p1", 1000),
        ("p2", 1000),
        ("p3", 2500),
    ]
