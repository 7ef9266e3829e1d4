"""The referrer portal in Chromium: a link issued through the API opens the referrer's page;
expired, tampered and mismatched links are refused without showing any of it."""

import time

import pytest
from playwright.sync_api import Page

from referrals.domain.links import LinkClaims
from referrals.services.referrers import add_referrer
from referrals.web import tokens
from tests.browser.conftest import LiveServer

REFEREES = 3


def enroll(live: LiveServer, user_id: str) -> str:
    with live.api(live.ingest_key) as api:
        response = api.post("/v1/referrers", json={"user_id": user_id})
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code


@pytest.fixture
def code(live: LiveServer) -> str:
    """alice, referred three people through the API."""
    code = enroll(live, "alice")
    with live.api(live.ingest_key) as api:
        for n in range(REFEREES):
            body = {"user_id": f"friend-{n}", "referral_code": code, "email": f"f{n}@example.org"}
            assert api.post("/v1/signups", json=body).status_code == 201
    return code


def issue(live: LiveServer, user_id: str = "alice") -> str:
    with live.api(live.ingest_key) as api:
        response = api.post(f"/v1/referrers/{user_id}/portal-link")
        assert response.status_code == 201, response.text
        url: str = response.json()["url"]
        return live.base_url + url


def sign(live: LiveServer, user_id: str, code: str, expires_at: int) -> str:
    return tokens.sign_link(live.services.settings, LinkClaims(user_id, code, expires_at))


def flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def assert_refused(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 403
    assert page.locator("#refused").inner_text() == "Link invalid or expired"
    body = page.locator("body").inner_text()
    assert "alice" not in body and "$" not in body
    assert page.locator("#code").count() == 0


def test_a_link_issued_through_the_api_opens_the_referrers_page(
    live: LiveServer, page: Page, code: str
) -> None:
    response = page.goto(issue(live))
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert page.locator("#code").inner_text() == code
    assert page.input_value("#share-link") == f"https://example.com/signup?ref={code}"
    assert page.locator("#referral-count").inner_text() == f"{REFEREES} referrals."
    assert page.locator("#referrals tbody tr").count() == REFEREES
    assert page.locator("#pending").inner_text() == "$30.00"  # three $10 rewards, unpaid
    assert page.locator("#paid").inner_text() == "$0.00"
    progress = page.locator("#tier-progress")
    assert (progress.get_attribute("value"), progress.get_attribute("max")) == ("3", "5")
    assert page.locator("#tier-text").inner_text().startswith("3 of 5 referrals")
    body = page.locator("body").inner_text()
    assert "friend-" not in body and "@example.org" not in body  # referees stay private


def test_an_expired_link_is_refused(live: LiveServer, page: Page, code: str) -> None:
    token = sign(live, "alice", code, int(time.time()) - 1)
    assert_refused(page, f"{live.base_url}/r/{code}?token={token}")


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_a_tampered_link_is_refused(live: LiveServer, page: Page, code: str, part: str) -> None:
    url = issue(live)  # the token ends the URL
    # The payload's first character, or the signature's last (its spare bits included).
    index = url.index("token=") + len("token=") if part == "payload" else len(url) - 1
    assert_refused(page, flip(url, index))


def test_a_link_opened_under_another_code_is_refused(
    live: LiveServer, page: Page, code: str
) -> None:
    other = enroll(live, "bob")
    assert_refused(page, issue(live).replace(f"/r/{code}", f"/r/{other}"))


def test_user_supplied_text_renders_inert(live: LiveServer, page: Page) -> None:
    # The API refuses such a user id; written straight to the store, it shows what the
    # page does with whatever gets there.
    payload = '"><img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
    with live.services.store.unit_of_work() as uow:
        code = add_referrer(uow, live.services.clock, payload, None).code
        uow.commit()
    token = sign(live, payload, code, int(time.time()) + 600)
    response = page.goto(f"{live.base_url}/r/{code}?token={token}")
    assert response is not None and response.status == 200
    assert page.locator("#user-id").inner_text() == payload
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
