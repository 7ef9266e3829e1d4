"""A tracked link, the snippet and a signup in Chromium: a visitor follows Alice's link
(`/l/ALICE` on the service), lands on the product's page (another origin, served here)
which loads the snippet with its Subresource Integrity hash, and signs up through the
product's form, whose backend passes `referrals.referral()` on to `POST /v1/signups`.
With consent given the click id outlives a reload without the query; with consent
pending no cookie is set and nothing is carried past the page."""

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script src="{api}/v1/snippet.js" integrity="{integrity}" crossorigin="anonymous"
        data-window-days="30" data-attribution="first" {consent}></script>
</head><body>
<h1>Welcome to the shop</h1>
<button id="consent" onclick="referrals.consent(true)">Accept cookies</button>
<form id="signup">
  <input id="user" name="user" value="bob">
  <button type="submit">Sign up</button>
</form>
<pre id="result"></pre>
<script>
document.getElementById("signup").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const body = {{user_id: document.getElementById("user").value, referral: referrals.referral()}};
  const answer = await fetch("/signup", {{method: "POST", body: JSON.stringify(body)}});
  document.getElementById("result").textContent = await answer.text();
}});
</script>
</body></html>
"""


@dataclass
class Landing:
    """The product's site: its landing pages and its signup backend."""

    origin: str
    signups: list[dict[str, Any]]  # what its backend got back from POST /v1/signups


@pytest.fixture
def landing(live: LiveServer) -> Iterator[Landing]:
    served = httpx.get(f"{live.base_url}/v1/snippet.js").content
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(served).digest()).decode()
    signups: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # /pending: the page asks for consent before the snippet sets a cookie.
            pending = urlsplit(self.path).path == "/pending"
            consent = 'data-consent="pending"' if pending else ""
            html = PAGE.format(api=live.base_url, integrity=integrity, consent=consent)
            self._answer(200, "text/html", html.encode())

        def do_POST(self) -> None:
            sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            referral = sent["referral"]
            if referral is None:
                self._answer(200, "application/json", b'{"referred": false}')
                return
            # The product's backend, with its ingest key: the browser never holds one.
            body = {
                "user_id": sent["user_id"],
                "referral_code": referral["code"],
                "click_id": referral["click_id"],
            }
            with live.api(live.ingest_key) as api:
                answer = api.post("/v1/signups", json=body)
            signups.append({"status": answer.status_code, **answer.json()})
            self._answer(200, "application/json", answer.content)

        def _answer(self, status: int, media_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Landing(f"http://127.0.0.1:{server.server_address[1]}", signups)
    server.shutdown()
    thread.join(timeout=10)


def set_up(live: LiveServer, landing: Landing, path: str) -> None:
    """Alice refers in the default program, whose links land on `path` of the shop."""
    with live.api() as api:
        program = api.patch("/v1/programs/default", json={"landing_url": landing.origin + path})
        assert program.status_code == 200, program.text
        assert api.post("/v1/referrers", json={"user_id": "alice", "code": "ALICE"}).is_success


def follow_link(page: Page, live: LiveServer, landing: Landing, path: str) -> str:
    """Click Alice's link; the click id the landing page was given."""
    page.goto(f"{live.base_url}/l/alice")
    expect(page.locator("h1")).to_have_text("Welcome to the shop")
    landed = urlsplit(page.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == landing.origin + path
    query = parse_qs(landed.query)
    assert query["ref"] == ["ALICE"]
    [click_id] = query["click_id"]
    # `serve` writes clicks behind the redirect, within 0.1 s: a person takes longer
    # to sign up; a test waits for it.
    deadline = time.monotonic() + 5
    while True:
        with live.services.store.read() as uow:
            if uow.clicks.get(click_id) is not None:
                return click_id
        assert time.monotonic() < deadline, "the click was never written"
        time.sleep(0.02)


def referral_cookie(page: Page) -> dict[str, Any] | None:
    found = [c for c in page.context.cookies() if c["name"] == "referrals_ref"]
    return dict(found[0]) if found else None


def sign_up(page: Page, user: str) -> dict[str, Any]:
    page.fill("#user", user)
    page.click("button[type=submit]")
    expect(page.locator("#result")).not_to_be_empty()
    answer: dict[str, Any] = json.loads(page.locator("#result").text_content() or "null")
    return answer


def test_the_click_is_carried_by_the_snippets_cookie_into_the_signup(
    page: Page, live: LiveServer, landing: Landing
) -> None:
    set_up(live, landing, "/welcome")
    click_id = follow_link(page, live, landing, "/welcome")
    cookie = referral_cookie(page)
    assert cookie is not None and cookie["value"] == f"ALICE.{click_id}"
    assert cookie["sameSite"] == "Lax" and cookie["secure"] is False  # http here
    # Later, the visitor comes back without the link's query: the cookie still has it.
    page.goto(landing.origin + "/welcome")
    assert page.evaluate("referrals.referral()") == {"code": "ALICE", "click_id": click_id}
    answer = sign_up(page, "bob")
    referral = answer["referral"]
    assert (referral["referrer_id"], referral["code"], referral["click_id"]) == (
        "alice",
        "ALICE",
        click_id,
    )
    with live.api() as api:
        [kept] = api.get("/v1/referrals").json()["items"]
    assert kept["click_id"] == click_id


def test_first_click_keeps_the_credit_over_a_later_one(
    page: Page, live: LiveServer, landing: Landing
) -> None:
    set_up(live, landing, "/welcome")
    first = follow_link(page, live, landing, "/welcome")
    second = follow_link(page, live, landing, "/welcome")
    assert second != first
    assert page.evaluate("referrals.referral()") == {"code": "ALICE", "click_id": first}


def test_with_consent_pending_no_cookie_is_set_and_nothing_outlives_the_page(
    page: Page, live: LiveServer, landing: Landing
) -> None:
    set_up(live, landing, "/pending")
    click_id = follow_link(page, live, landing, "/pending")
    assert referral_cookie(page) is None
    # The page's own URL is still known, in memory: a signup right here is credited.
    assert page.evaluate("referrals.referral()") == {"code": "ALICE", "click_id": click_id}
    page.goto(landing.origin + "/pending")  # a reload without the query
    assert page.evaluate("referrals.referral()") is None
    assert sign_up(page, "bob") == {"referred": False}
    assert referral_cookie(page) is None
    assert landing.signups == []


def test_once_consent_is_given_the_cookie_carries_the_click(
    page: Page, live: LiveServer, landing: Landing
) -> None:
    set_up(live, landing, "/pending")
    click_id = follow_link(page, live, landing, "/pending")
    assert referral_cookie(page) is None
    page.click("#consent")
    cookie = referral_cookie(page)
    assert cookie is not None and cookie["value"] == f"ALICE.{click_id}"
    page.goto(landing.origin + "/pending")
    # Consent is the page's to remember: it says so again, and the kept cookie is read.
    page.click("#consent")
    assert page.evaluate("referrals.referral()") == {"code": "ALICE", "click_id": click_id}
    answer = sign_up(page, "bob")
    assert answer["referral"]["click_id"] == click_id
    assert [s["status"] for s in landing.signups] == [201]
