"""The admin dashboard in Chromium: sign in with an admin key, read real numbers off the
charts, review held rewards, download a report, retry a dead letter; and the refusals
(an ingest key, a tampered or expired cookie) and inert XSS payloads."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from referrals.api.dashboard_routes import COOKIE
from referrals.domain.model import EventStatus
from referrals.web import tokens
from tests.browser.conftest import LiveServer

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    '"><svg onload="window.__xss=1">',
]
# The email validator allows quotes and `=` in a local part: an unquoted attribute breaks.
XSS_EMAIL = "x'onmouseover='window.__xss=1'@mailinator.com"


def enroll(live: LiveServer, user_id: str) -> str:
    with live.api() as api:
        response = api.post("/v1/referrers", json={"user_id": user_id})
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code


def signup(live: LiveServer, user_id: str, code: str, **extra: Any) -> dict[str, Any]:
    with live.api() as api:
        body = {"user_id": user_id, "referral_code": code, **extra}
        response = api.post("/v1/signups", json=body)
        assert response.status_code == 201, response.text
        referral: dict[str, Any] = response.json()["referral"]
        return referral


def referral(live: LiveServer, referral_id: str) -> dict[str, Any]:
    with live.api() as api:
        found: dict[str, Any] = api.get(f"/v1/referrals/{referral_id}").json()
        return found


def sign_in(page: Page, live: LiveServer, key: str | None = None) -> None:
    page.goto(f"{live.base_url}/dashboard/login")
    page.fill("#key", key or live.admin_key)
    page.click("button[type=submit]")


def signed_in(page: Page, live: LiveServer) -> None:
    sign_in(page, live)
    expect(page).to_have_url(f"{live.base_url}/dashboard")


def bar(page: Page, day: str) -> tuple[int, str]:
    """The signups chart's bar of `day`: its value, and its tooltip (the SVG <title>)."""
    group = page.locator(f'#signups g.bar[data-label="{day}"]')
    return int(group.get_attribute("data-value") or -1), group.locator("title").text_content() or ""


def assert_inert(page: Page) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_sign_in_shows_the_charts_with_the_real_numbers(page: Page, live: LiveServer) -> None:
    alice, bob = enroll(live, "alice"), enroll(live, "bob")
    today = datetime.now(UTC).date()
    ten_days_ago = today - timedelta(days=10)
    for n in range(5):  # the fifth referral earns the $15 tier
        signup(live, f"a{n}", alice)
    signup(live, "b0", bob, signed_up_at=f"{ten_days_ago.isoformat()}T12:00:00Z")
    signup(live, "b1", bob, signed_up_at="2026-01-15T12:00:00Z")  # before the window

    signed_in(page, live)

    expect(page.locator("h1")).to_have_text("Overview")
    assert bar(page, today.isoformat()) == (5, f"{today.isoformat()}: 5 signups")
    assert bar(page, ten_days_ago.isoformat()) == (1, f"{ten_days_ago.isoformat()}: 1 signups")
    assert page.locator("#signups g.bar").count() == 30
    expect(page.locator("#signups h2")).to_have_text("Signups per day: 6 in 30 days")
    tiers = page.locator("#tiers tbody tr")
    expect(tiers.nth(0).locator("td.count")).to_have_text("5")  # alice's 4, bob's first
    expect(tiers.nth(0).locator("td.cents")).to_have_text("$50.00")
    expect(tiers.nth(1).locator("td.cents")).to_have_text("$15.00")
    expect(page.locator('#money tr[data-state="pending"] td.cents')).to_have_text("$75.00")
    leader = page.locator("#top tbody tr").first
    expect(leader.locator("td.referrer")).to_have_text("alice")
    expect(leader.locator("td.count")).to_have_text("5")
    expect(leader.locator("td.cents")).to_have_text("$55.00")


def test_approve_a_held_reward(page: Page, live: LiveServer) -> None:
    held = signup(live, "mallory", enroll(live, "alice"), email="m@mailinator.com")
    assert held["status"] == "held"
    signed_in(page, live)
    page.click("text=Review queue")
    row = page.locator(f'tr[data-referral="{held["id"]}"]')
    expect(row).to_contain_text("disposable_email")
    row.locator("form.approve input[name=reason]").fill("checked by phone")
    row.locator("form.approve button").click()
    expect(page.locator("p.notice")).to_contain_text("Approved")
    expect(page.locator("#held")).to_have_count(0)
    after = referral(live, held["id"])
    assert (after["status"], after["note"]) == ("pending", "checked by phone")
    expect(page.locator("#audit tbody tr").first).to_contain_text("review.approve")


def test_reject_a_held_reward_with_a_reason(page: Page, live: LiveServer) -> None:
    held = signup(live, "mallory", enroll(live, "alice"), email="m@mailinator.com")
    signed_in(page, live)
    page.goto(f"{live.base_url}/dashboard/reviews")
    row = page.locator(f'tr[data-referral="{held["id"]}"]')
    row.locator("form.reject input[name=reason]").fill("throwaway address")
    row.locator("form.reject button").click()
    expect(page.locator("p.notice")).to_contain_text("Rejected")
    after = referral(live, held["id"])
    assert (after["status"], after["note"]) == ("rejected", "throwaway address")


def test_download_a_payout_report(page: Page, live: LiveServer) -> None:
    code = enroll(live, "alice")
    for n, day in enumerate(["2026-10-02", "2026-10-20"]):
        signup(live, f"u{n}", code, signed_up_at=f"{day}T08:00:00Z")
    with live.api() as api:
        run = api.post("/v1/payouts", json={"period": "2026-10"}).json()
    assert run["status"] == "completed" and run["total_cents"] == 2000
    signed_in(page, live)
    page.click("text=Payout runs")
    expect(page.locator('tr[data-period="2026-10"]')).to_contain_text("$20.00")
    with page.expect_download() as info:
        page.click("text=payouts-2026-10.csv")
    download = info.value
    assert download.suggested_filename == "payouts-2026-10.csv"
    with open(download.path(), encoding="utf-8") as report:
        rows = list(csv.reader(io.StringIO(report.read())))
    assert rows == [
        [
            "period",
            "referrer_id",
            "referral_count",
            "amount_cents",
            "amount",
            "currency",
            "program",
        ],
        ["2026-10", "alice", "2", "2000", "20.00", "USD", "default"],
    ]


def make_dead_letter(live: LiveServer, error: str) -> str:
    store = live.services.store
    with store.read() as uow:
        event = uow.outbox.list(None, 1)[0]
    with store.unit_of_work() as uow:
        uow.outbox.attempt_failed(event.id, error, live.services.clock.now(), dead=True)
        uow.commit()
    return event.id


def test_retry_a_dead_letter(page: Page, live: LiveServer) -> None:
    signup(live, "u1", enroll(live, "alice"))
    event_id = make_dead_letter(live, "HTTP 503 from the webhook")
    signed_in(page, live)
    page.click("text=Notifications")
    row = page.locator(f'#dead tr[data-event="{event_id}"]')
    expect(row).to_contain_text("HTTP 503 from the webhook")
    row.locator("button", has_text="Retry").click()
    expect(page.locator("p.notice")).to_have_text("Queued for delivery again.")
    expect(page.locator("#dead")).to_have_count(0)
    with live.services.store.read() as uow:
        event = uow.outbox.get(event_id)
        actions = [(e.action, e.target) for e in uow.audit.list(None, 5)]
    assert event is not None and event.status is EventStatus.PENDING
    assert ("event.retry", f"event:{event_id}") in actions


def test_an_ingest_key_is_refused_at_sign_in(page: Page, live: LiveServer) -> None:
    page.goto(f"{live.base_url}/dashboard/login")
    page.fill("#key", live.ingest_key)
    with page.expect_response(f"{live.base_url}/dashboard/login") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 403
    expect(page.locator("p.error")).to_have_text("An ingest key cannot open the dashboard.")
    assert page.context.cookies() == []
    page.goto(f"{live.base_url}/dashboard")
    expect(page).to_have_url(f"{live.base_url}/dashboard/login")


def test_the_session_cookie_is_http_only_and_strict(page: Page, live: LiveServer) -> None:
    signed_in(page, live)
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["path"]) == (COOKIE, "/dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert live.admin_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # out of reach of scripts


@pytest.mark.parametrize("damage", ["tampered", "expired"])
def test_a_tampered_or_expired_session_cookie_is_refused(
    page: Page, live: LiveServer, damage: str
) -> None:
    signed_in(page, live)
    (cookie,) = page.context.cookies()
    if damage == "tampered":
        value = cookie["value"]
        value = value[:-1] + ("A" if value[-1] != "A" else "B")
    else:
        key_id = cookie["value"].split(".")[0]
        past = datetime.now(UTC) - timedelta(hours=9)  # sessions last 8 hours
        value = tokens.issue_session(live.services.settings, key_id, past).token
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": COOKIE, "value": value, "url": f"{live.base_url}/dashboard"}]
    )
    page.goto(f"{live.base_url}/dashboard")
    expect(page).to_have_url(f"{live.base_url}/dashboard/login")
    expect(page.locator("#key")).to_be_visible()


def test_xss_payloads_in_every_free_text_render_inert(page: Page, live: LiveServer) -> None:
    code = enroll(live, "alice")
    approved = signup(live, "m1", code, email="m1@mailinator.com")
    rejected = signup(live, "m2", code, email="m2@mailinator.com")
    waiting = signup(live, "m3", code, email=XSS_EMAIL)
    assert waiting["status"] == "held"
    event_id = make_dead_letter(live, " ".join(PAYLOADS))
    with live.services.store.unit_of_work() as uow:  # a failed run's error is shown too
        now = live.services.clock.now()
        cutoff = datetime(2026, 10, 1, tzinfo=UTC)
        assert uow.payouts.claim("2026-09", cutoff, "crashed", now, now + timedelta(seconds=30))
        uow.commit()
    with live.services.store.unit_of_work() as uow:
        uow.payouts.fail("2026-09", "crashed", PAYLOADS[1])
        uow.commit()

    signed_in(page, live)
    page.goto(f"{live.base_url}/dashboard/reviews")
    for held, decision, reason in [
        (approved, "approve", PAYLOADS[0]),
        (rejected, "reject", PAYLOADS[1]),
    ]:
        row = page.locator(f'tr[data-referral="{held["id"]}"]')
        row.locator(f"form.{decision} input[name=reason]").fill(reason)
        row.locator(f"form.{decision} button").click()
        expect(page.locator("p.notice")).to_be_visible()
        assert_inert(page)

    reasons = page.locator("#audit td.reason").all_inner_texts()
    assert PAYLOADS[0] in reasons and PAYLOADS[1] in reasons
    email = page.locator(f'tr[data-referral="{waiting["id"]}"] td.email')
    expect(email).to_have_text(XSS_EMAIL)
    email.hover()
    assert page.locator("#audit img, #held img, script:not([src])").count() == 0
    assert_inert(page)

    page.goto(f"{live.base_url}/dashboard/notifications")
    dead = page.locator(f'#dead tr[data-event="{event_id}"] td.last-error')
    expect(dead).to_have_text(" ".join(PAYLOADS))
    assert page.locator("main img, main script, main svg").count() == 0
    assert_inert(page)

    page.goto(f"{live.base_url}/dashboard/payouts")
    expect(page.locator('tr[data-period="2026-09"] .error')).to_have_text(PAYLOADS[1])
    assert_inert(page)
    assert referral(live, approved["id"])["note"] == PAYLOADS[0]
