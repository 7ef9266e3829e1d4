import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.domain.clicks import Click, new_click_id
from referrals.domain.links import LinkClaims
from referrals.web import tokens
from tests.clocks import FixedClock

TTL = 2 * 24 * 3600


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "share_url": "https://app.example/join?ref={code}&src=portal",
        "portal_link_ttl_seconds": TTL,
        "hold_days": 30,
        "secret_key": "api-test-secret-0123456789abcdef01234",
    }


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def app(services: Services, clock: FixedClock) -> TestClient:
    """The app on a clock the tests set: links expire on it."""
    return TestClient(create_app(replace(services, clock=clock)))


@pytest.fixture
def code(app: TestClient, ingest: dict[str, str]) -> str:
    body = {"user_id": "alice", "email": "alice@example.com"}
    response = app.post("/v1/referrers", json=body, headers=ingest)
    assert response.status_code == 201
    for n, email in enumerate(["bob@example.org", "carol@example.org"]):
        signup = {"user_id": f"referee-{n}", "referral_code": response.json()["code"]}
        signup["email"] = email
        assert app.post("/v1/signups", json=signup, headers=ingest).status_code == 201
    value: str = response.json()["code"]
    return value


def issue(app: TestClient, headers: dict[str, str], body: Any = None) -> str:
    response = app.post("/v1/referrers/alice/portal-link", json=body, headers=headers)
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no element #{element_id}"
    return " ".join(found.group(1).split())


def assert_refused(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "alice" not in response.text and "$" not in response.text


# -- issuing a link (JSON API) ---------------------------------------------------------


def test_an_ingest_key_issues_a_link_valid_for_the_default_ttl(
    app: TestClient, ingest: dict[str, str], code: str, clock: FixedClock
) -> None:
    response = app.post("/v1/referrers/alice/portal-link", headers=ingest)
    assert response.status_code == 201
    body = response.json()
    url = urlsplit(body["url"])
    assert url.path == f"/r/{code}" and not url.scheme and not url.netloc
    assert list(parse_qs(url.query)) == ["token"]
    expected = (clock.now() + timedelta(seconds=TTL)).replace(microsecond=0)
    assert body["expires_at"] == expected.isoformat().replace("+00:00", "Z")


def test_an_admin_key_issues_a_link_with_a_shorter_ttl(
    app: TestClient, admin: dict[str, str], code: str, clock: FixedClock
) -> None:
    response = app.post("/v1/referrers/alice/portal-link", json={"ttl_seconds": 600}, headers=admin)
    assert response.status_code == 201
    expected = (clock.now() + timedelta(seconds=600)).replace(microsecond=0)
    assert response.json()["expires_at"] == expected.isoformat().replace("+00:00", "Z")


def test_a_null_or_empty_body_takes_the_default(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    for body in (None, {}, {"ttl_seconds": None}):
        assert app.get(issue(app, ingest, body)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"ttl_seconds": 59},
        {"ttl_seconds": 0},
        {"ttl_seconds": -60},
        {"ttl_seconds": TTL + 1},  # over the setting, the schema's maximum too
        {"ttl_seconds": 10**12},
        {"ttl_seconds": "600"},
        {"ttl_seconds": 600.5},  # 600.0 is 600, as JSON Schema reads it
        {"ttl_seconds": True},
        {"ttl_seconds": [600]},
        {"ttl": 600},
        [],
        "600",
    ],
)
def test_a_bad_body_is_a_400(app: TestClient, ingest: dict[str, str], code: str, body: Any) -> None:
    response = app.post("/v1/referrers/alice/portal-link", json=body, headers=ingest)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_malformed_json_is_a_400(app: TestClient, ingest: dict[str, str], code: str) -> None:
    response = app.post(
        "/v1/referrers/alice/portal-link",
        content=b'{"ttl_seconds": ',
        headers=ingest | {"Content-Type": "application/json"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("user_id", ["a%20b", "x" * 129, "%3Cscript%3E"])
def test_a_bad_user_id_is_a_400(app: TestClient, ingest: dict[str, str], user_id: str) -> None:
    response = app.post(f"/v1/referrers/{user_id}/portal-link", headers=ingest)
    assert response.status_code == 400


def test_an_unknown_referrer_is_a_404(app: TestClient, ingest: dict[str, str]) -> None:
    response = app.post("/v1/referrers/nobody/portal-link", headers=ingest)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("authorization", [None, "Bearer rk_not_a_key", "Basic abc"])
def test_a_missing_or_bad_key_is_a_401(
    app: TestClient, code: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = app.post("/v1/referrers/alice/portal-link", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_the_route_is_documented(app: TestClient) -> None:
    schema = app.get("/openapi.json").json()
    responses = schema["paths"]["/v1/referrers/{user_id}/portal-link"]["post"]["responses"]
    assert {"201", "400", "401", "404"} <= set(responses)
    assert not any(path.startswith("/r/") for path in schema["paths"])


# -- the page ----------------------------------------------------------------------------


def test_the_page_shows_the_code_share_link_referrals_and_earnings(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    response = app.get(issue(app, ingest))
    assert response.status_code == 200
    html = response.text
    assert text_of(html, "code") == code
    share = f"https://app.example/join?ref={code}&amp;src=portal"
    assert f'value="{share}"' in html
    assert text_of(html, "referral-count") == "2 referrals."
    assert html.count("<tr><td>") == 2
    assert text_of(html, "pending") == "$20.00"  # two $10 rewards, in their hold
    assert text_of(html, "paid") == "$0.00"
    assert text_of(html, "tier-text").startswith("2 of 5 referrals")
    assert re.search(r'<progress id="tier-progress" value="2" max="5"', html)


def test_the_page_hides_who_the_referees_are(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    html = app.get(issue(app, ingest)).text
    for secret in ("bob@example.org", "carol@example.org", "referee-0", "referee-1"):
        assert secret not in html
    assert html.count("re•••") == 2


def test_the_page_headers_keep_the_token_private(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    response = app.get(issue(app, ingest))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_code_in_the_path_matches_in_any_case(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    url = issue(app, ingest).replace(f"/r/{code}", f"/r/{code.lower()}")
    assert app.get(url).status_code == 200


def test_held_and_paid_amounts_are_shown(
    app: TestClient, admin: dict[str, str], ingest: dict[str, str], code: str
) -> None:
    # A throwaway address is held for review; an old signup gets paid.
    held = {"user_id": "throwaway", "referral_code": code, "email": "x@10minutemail.com"}
    assert app.post("/v1/signups", json=held, headers=ingest).status_code == 201
    old = {"user_id": "early", "referral_code": code, "signed_up_at": "2026-01-10T00:00:00Z"}
    assert app.post("/v1/signups", json=old, headers=admin).status_code == 201
    assert app.post("/v1/payouts", json={"period": "2026-02"}, headers=admin).status_code == 200
    html = app.get(issue(app, ingest)).text
    assert text_of(html, "held") == "$10.00"
    assert text_of(html, "paid") == "$10.00"
    assert text_of(html, "pending") == "$20.00"
    assert text_of(html, "referral-count") == "4 referrals."


def test_a_page_in_a_yen_program_shows_yen(
    app: TestClient, services: Services, admin: dict[str, str], clock: FixedClock, code: str
) -> None:
    """Alice refers in the default program (dollars) and in a JPY one: her JPY page shows
    her yen alone, with no decimals, and never her dollars added in."""
    japan = {
        "id": "japan",
        "name": "Japan",
        "currency": "JPY",
        "rules": {
            "tiers": [{"threshold": 1, "reward_cents": 500}, {"threshold": 5, "reward_cents": 800}]
        },
    }
    assert app.post("/v1/programs", json=japan, headers=admin).status_code == 201
    enrolled = app.post("/v1/programs/japan/referrers", json={"user_id": "alice"}, headers=admin)
    yen_code = enrolled.json()["code"]
    for n in range(2):
        signup = {"user_id": f"yen-referee-{n}", "referral_code": yen_code}
        assert app.post("/v1/signups", json=signup, headers=admin).status_code == 201
    claims = LinkClaims("alice", yen_code, int(clock.now().timestamp()) + 60)
    token = tokens.sign_link(services.settings, claims)

    response = app.get(f"/r/{yen_code}", params={"token": token})
    assert response.status_code == 200, response.text
    html = response.text
    assert text_of(html, "pending") == "1000 JPY" and text_of(html, "paid") == "0 JPY"
    assert text_of(html, "earned") == "1000 JPY"
    assert "800 JPY a referral from referral 5 on" in text_of(html, "tier-text")
    assert html.count('<td class="num">500 JPY</td>') == 2
    assert "$" not in html and "20.00" not in html


def test_a_referrer_without_referrals_sees_an_empty_list(
    app: TestClient, ingest: dict[str, str]
) -> None:
    app.post("/v1/referrers", json={"user_id": "alice"}, headers=ingest)
    html = app.get(issue(app, ingest)).text
    assert text_of(html, "referral-count") == "0 referrals."
    assert "No referrals yet" in html
    assert re.search(r'<progress id="tier-progress" value="0" max="1"', html)


def test_an_expired_link_is_refused(
    app: TestClient, ingest: dict[str, str], code: str, clock: FixedClock
) -> None:
    url = issue(app, ingest, {"ttl_seconds": 60})
    clock.advance(seconds=60)
    response = app.get(url)
    assert_refused(response, 403)
    assert "invalid or has expired" in response.text


def test_a_tampered_link_is_refused(app: TestClient, ingest: dict[str, str], code: str) -> None:
    url = issue(app, ingest)
    token = parse_qs(urlsplit(url).query)["token"][0]
    body, _, signature = token.rpartition(".")
    for forged in (f"{body}.{signature[::-1]}", f"{body[1:]}.{signature}"):
        assert_refused(app.get(f"/r/{code}", params={"token": forged}), 403)


def test_a_link_for_another_code_is_refused(
    app: TestClient, ingest: dict[str, str], code: str
) -> None:
    bob = app.post("/v1/referrers", json={"user_id": "bob"}, headers=ingest).json()["code"]
    response = app.get(issue(app, ingest).replace(f"/r/{code}", f"/r/{bob}"))
    assert_refused(response, 403)


def test_a_link_signed_with_another_secret_is_refused(
    app: TestClient, services: Services, code: str, clock: FixedClock
) -> None:
    claims = LinkClaims("alice", code, int(clock.now().timestamp()) + 60)
    other = services.settings.model_copy(
        update={"secret_key": "another-secret-0123456789abcdef0123"}
    )
    token = tokens.sign_link(other, claims)
    assert_refused(app.get(f"/r/{code}", params={"token": token}), 403)
    # The same claims under this app's secret do open the page.
    token = tokens.sign_link(services.settings, claims)
    assert app.get(f"/r/{code}", params={"token": token}).status_code == 200


def test_a_missing_token_is_refused(app: TestClient, code: str) -> None:
    assert_refused(app.get(f"/r/{code}"), 403)


def test_an_unknown_code_is_a_404_page(app: TestClient, ingest: dict[str, str], code: str) -> None:
    token = parse_qs(urlsplit(issue(app, ingest)).query)["token"][0]
    response = app.get("/r/NOSUCHCODE", params={"token": token})
    assert_refused(response, 404)
    assert "no referral page" in response.text


@pytest.mark.parametrize(
    "url",
    [
        "/r/",
        "/r/%00",
        "/r/%ff%fe",
        "/r/a/b/c",
        "/r/..%2f..%2fetc%2fpasswd",
        "/r/" + "A" * 5000,
        "/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/r/{code}?token=",
        "/r/{code}?token=%00",
        "/r/{code}?token=%ff%fe",
        "/r/{code}?token=%E2%80%AE.abc",
        "/r/{code}?token=" + "A" * 10_000,
        "/r/{code}?token=a&token=b",
        "/r/{code}?token[]=x",
        "/r/{code}?token=..........",
        "/r/{code}?%ff=%ff",
    ],
)
def test_no_input_makes_the_page_fail(app: TestClient, code: str, url: str) -> None:
    response = app.get(url.replace("{code}", code))
    assert response.status_code in (403, 404)
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text


def test_the_page_shows_the_clicks_on_the_referrers_link_in_the_last_30_days(
    app: TestClient, services: Services, clock: FixedClock, ingest: dict[str, str], code: str
) -> None:
    now = clock.now()
    with services.store.unit_of_work() as uow:
        for referrer, days_ago in (("alice", 1), ("alice", 29), ("alice", 31), ("referee-0", 1)):
            at = now - timedelta(days=days_ago)
            uow.clicks.add(Click(new_click_id(), "default", code, referrer, at))
        uow.commit()
    html = app.get(issue(app, ingest)).text
    assert text_of(html, "clicks") == "2 clicks on your link in the last 30 days."
