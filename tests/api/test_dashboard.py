"""The admin dashboard over HTTP, in-process: sign-in, sessions, CSRF, and every page's forms."""

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from referrals.api import dashboard_routes
from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.derived_keys import DASHBOARD_SESSION, PORTAL_LINK, serializer
from referrals.domain.model import EventStatus, ReferralStatus, Role
from referrals.services.keys import create_key, revoke_key, rotate_key
from referrals.services.sales import hold_sale
from referrals.web import tokens
from tests.api.common import signup

Headers = dict[str, str]
PAGES = [
    "/dashboard",
    "/dashboard/payouts",
    "/dashboard/reviews",
    "/dashboard/notifications",
    "/dashboard/programs",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def admin_key(services: Services) -> tuple[str, str]:
    """(plaintext, id) of an admin key."""
    plaintext, key = create_key(services.store, services.clock, Role.ADMIN)
    return plaintext, key.id


@pytest.fixture
def signed_in(client: TestClient, admin_key: tuple[str, str]) -> TestClient:
    response = client.post("/dashboard/login", data={"key": admin_key[0]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    return client


def csrf_of(client: TestClient, page: str = "/dashboard") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert match is not None
    return match.group(1)


def referral_status(client: TestClient, admin: Headers, referral_id: str) -> str:
    status: str = client.get(f"/v1/referrals/{referral_id}", headers=admin).json()["status"]
    return status


def audit_actions(client: TestClient, admin: Headers) -> list[tuple[str, str, str | None]]:
    items = client.get("/v1/audit", headers=admin).json()["items"]
    return [(e["action"], e["actor"], e["reason"]) for e in items if e["action"] != "key.create"]


# Sign-in and sessions


@pytest.mark.parametrize("page", [*PAGES, "/dashboard/payouts/2026-10/report"])
def test_pages_without_a_session_redirect_to_the_sign_in(client: TestClient, page: str) -> None:
    response = client.get(page, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"


def test_the_sign_in_page_is_a_form(client: TestClient) -> None:
    response = client.get("/dashboard/login")
    assert response.status_code == 200 and 'name="key"' in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_an_admin_key_signs_in_with_a_strict_http_only_cookie(
    client: TestClient, services: Services, admin_key: tuple[str, str]
) -> None:
    plaintext, key_id = admin_key
    response = client.post("/dashboard/login", data={"key": plaintext}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "Path=/dashboard" in cookie and "SameSite=strict" in cookie
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert "Max-Age=28800" in cookie  # dashboard_session_seconds
    value = cookie.split(";")[0].split("=", 1)[1]
    session = tokens.verify_session(services.settings, value, services.clock.now())
    assert session is not None and session.key_id == key_id and plaintext not in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200 and key_id in page.text


def test_the_cookie_is_secure_when_the_request_came_over_https(
    services: Services, admin_key: tuple[str, str]
) -> None:
    client = TestClient(create_app(services), base_url="https://testserver")
    response = client.post("/dashboard/login", data={"key": admin_key[0]}, follow_redirects=False)
    assert response.status_code == 303 and "; secure" in response.headers["set-cookie"].lower()
    assert client.get("/dashboard").status_code == 200


@pytest.mark.parametrize(
    ("key", "status"), [("rk_not-a-key", 401), ("", 401), ("x" * 5000, 401), ("ingest", 403)]
)
def test_a_bad_or_ingest_key_is_refused_without_a_cookie(
    client: TestClient, services: Services, key: str, status: int
) -> None:
    if key == "ingest":
        key, _ = create_key(services.store, services.clock, Role.INGEST)
    response = client.post("/dashboard/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == status and "set-cookie" not in response.headers
    assert 'role="alert"' in response.text
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_sign_in_refuses_another_site_and_other_encodings(
    client: TestClient, admin_key: tuple[str, str]
) -> None:
    key = admin_key[0]
    foreign = client.post(
        "/dashboard/login",
        data={"key": key},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    as_json = client.post("/dashboard/login", json={"key": key}, follow_redirects=False)
    not_utf8 = client.post(
        "/dashboard/login", content=b"key=\xff\xfe", headers=FORM, follow_redirects=False
    )
    assert (foreign.status_code, as_json.status_code, not_utf8.status_code) == (403, 415, 400)
    assert all("set-cookie" not in r.headers for r in (foreign, as_json, not_utf8))


def test_a_session_of_this_host_over_http_is_accepted_from_its_own_origin(
    signed_in: TestClient,
) -> None:
    origin = {"Origin": "http://testserver"}
    response = signed_in.post(
        "/dashboard/logout",
        data={"csrf": csrf_of(signed_in)},
        headers=origin,
        follow_redirects=False,
    )
    assert response.status_code == 303


def cookie_of(client: TestClient) -> str:
    value: str = client.cookies.get(dashboard_routes.COOKIE, path="/dashboard") or ""
    assert value
    return value


@pytest.mark.parametrize("damage", ["tampered", "expired", "other purpose", "other secret"])
def test_a_tampered_or_expired_session_is_refused(
    signed_in: TestClient, services: Services, admin_key: tuple[str, str], damage: str
) -> None:
    client = signed_in
    settings, now, key_id = services.settings, services.clock.now(), admin_key[1]
    good = cookie_of(client)
    claims = serializer(settings, DASHBOARD_SESSION).loads(good)
    if damage == "tampered":  # another key id under the original signature
        body = serializer(settings, DASHBOARD_SESSION).dump_payload(claims | {"k": "0" * 26})
        token = f"{body.decode()}.{good.rpartition('.')[2]}"
    elif damage == "expired":
        past = now - timedelta(seconds=settings.dashboard_session_seconds + 1)
        token = tokens.issue_session(settings, key_id, past).token
    elif damage == "other purpose":  # the same claims signed as a portal link
        token = serializer(settings, PORTAL_LINK).dumps(claims)
    else:
        other = settings.model_copy(update={"secret_key": "another-secret-0123456789abcdef0123"})
        token = tokens.issue_session(other, key_id, now).token
    client.cookies.set(dashboard_routes.COOKIE, good, path="/dashboard")
    control = client.get("/dashboard", follow_redirects=False)
    assert control.status_code == 200  # the control: the cookie is sent
    client.cookies.set(dashboard_routes.COOKIE, token, path="/dashboard")
    response = client.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"


def test_sign_out_clears_the_cookie(signed_in: TestClient) -> None:
    response = signed_in.post(
        "/dashboard/logout", data={"csrf": csrf_of(signed_in)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f'{dashboard_routes.COOKIE}=""') and "Max-Age=0" in cookie
    assert "Path=/dashboard" in cookie
    assert signed_in.get("/dashboard", follow_redirects=False).status_code == 303


def test_sign_out_without_the_csrf_token_keeps_the_session(signed_in: TestClient) -> None:
    response = signed_in.post(
        "/dashboard/logout", content=b"", headers=FORM, follow_redirects=False
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert signed_in.get("/dashboard").status_code == 200


def test_a_copied_cookie_is_refused_after_sign_out(
    signed_in: TestClient, services: Services, held: Any
) -> None:
    copied, csrf = cookie_of(signed_in), csrf_of(signed_in, "/dashboard/reviews")
    signed_in.post("/dashboard/logout", data={"csrf": csrf})
    signed_in.cookies.set(dashboard_routes.COOKIE, copied, path="/dashboard")
    response = signed_in.get("/dashboard", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
    # Nor can the copy post a form with the page's CSRF token it had.
    refused = post_review(signed_in, held["id"], "approve", csrf)
    assert refused.status_code == 403
    with services.store.read() as uow:
        assert uow.referrals.get(held["id"]).status is ReferralStatus.HELD  # type: ignore[union-attr]


def test_a_validly_signed_token_with_no_session_on_the_server_is_refused(
    client: TestClient, services: Services, admin_key: tuple[str, str]
) -> None:
    token = tokens.issue_session(services.settings, admin_key[1], services.clock.now()).token
    client.cookies.set(dashboard_routes.COOKIE, token, path="/dashboard")
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(
    signed_in: TestClient, services: Services, admin_key: tuple[str, str]
) -> None:
    assert signed_in.get("/dashboard", follow_redirects=False).status_code == 200
    revoke_key(services.store, services.clock, admin_key[1])
    assert signed_in.get("/dashboard", follow_redirects=False).status_code == 303
    response = signed_in.post("/dashboard/login", data={"key": admin_key[0]})
    assert response.status_code == 401  # nor can it sign in again


def test_a_rotated_keys_sessions_end_with_its_grace_period(
    signed_in: TestClient, services: Services, admin_key: tuple[str, str]
) -> None:
    rotate_key(services.store, services.clock, admin_key[1], timedelta(0))
    assert signed_in.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_session_never_outlives_its_key(client: TestClient, services: Services) -> None:
    plaintext, key = create_key(
        services.store, services.clock, Role.ADMIN, expires_in=timedelta(minutes=30)
    )
    response = client.post("/dashboard/login", data={"key": plaintext}, follow_redirects=False)
    max_age = int(response.headers["set-cookie"].split("Max-Age=")[1].split(";")[0])
    assert 1790 <= max_age <= 1800  # the key's half hour, not the session's 8 hours
    with services.store.read() as uow:
        (stored,) = [k for k in uow.api_keys.list() if k.id == key.id]
    assert stored.last_used_at is not None  # a sign-in is a use of the key


# Overview


def test_the_overview_shows_signups_tiers_money_and_the_leaderboard(
    signed_in: TestClient, admin: Headers, alice_code: str
) -> None:
    for n in range(5):  # the fifth is in the $15 tier
        signup(signed_in, admin, f"u{n}", alice_code)
    # The sixth referral ($15), imported into January and paid by January's run.
    signup(signed_in, admin, "old", alice_code, signed_up_at="2026-01-15T00:00:00Z")
    signed_in.post("/v1/payouts", json={"period": "2026-01"}, headers=admin)
    dashboard_app_cache_clear(signed_in)
    page = signed_in.get("/dashboard")
    assert page.status_code == 200
    bars = re.findall(r'data-label="(\d{4}-\d\d-\d\d)" data-value="(\d+)"', page.text)
    assert len(bars) == 30 and sum(int(v) for _, v in bars) == 5  # the import is older
    assert bars[-1][1] == "5"  # all today
    assert "Signups per day: 5 in 30 days" in page.text
    tiers = dict(
        re.findall(r'data-reward-cents="(\d+)">.*?class="num count">(\d+)<', page.text, re.S)
    )
    assert tiers == {"1000": "4", "1500": "1"}
    assert re.search(r'data-state="pending">.*?<td class="num">5</td>.*?\$55\.00', page.text)
    assert re.search(r'id="paid-total">.*?1 completed payout run<.*?\$15\.00', page.text)
    assert re.search(r'class="referrer">alice</td><td class="num count">5</td>', page.text)


def dashboard_app_cache_clear(client: TestClient) -> None:
    """Drop a cached overview, as its few seconds would."""
    app: Any = client.app
    app.state.dashboard_overview = None


def test_an_overview_is_reused_for_a_few_seconds(
    signed_in: TestClient, admin: Headers, alice_code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "Signups per day: 0 in" in signed_in.get("/dashboard").text
    signup(signed_in, admin, "u1", alice_code)
    assert "Signups per day: 0 in" in signed_in.get("/dashboard").text
    monkeypatch.setattr(dashboard_routes, "OVERVIEW_TTL_S", 0.0)
    assert "Signups per day: 1 in" in signed_in.get("/dashboard").text


# Review queue and CSRF


def post_review(
    client: TestClient, referral_id: str, decision: str, csrf: str | None, **fields: str
) -> Any:
    data = {**({"csrf": csrf} if csrf is not None else {}), "reason": "", **fields}
    return client.post(
        f"/dashboard/reviews/{referral_id}/{decision}", data=data, follow_redirects=False
    )


def test_approve_releases_the_reward_as_the_signed_in_key(
    signed_in: TestClient, admin: Headers, held: Any, admin_key: tuple[str, str]
) -> None:
    page = signed_in.get("/dashboard/reviews")
    assert held["id"] in page.text and "bob@mailinator.com" in page.text
    response = post_review(signed_in, held["id"], "approve", csrf_of(signed_in), reason="")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/reviews?done=approved"
    assert referral_status(signed_in, admin, held["id"]) == "pending"
    assert audit_actions(signed_in, admin) == [("review.approve", admin_key[1], None)]
    assert "Approved" in signed_in.get(response.headers["location"]).text


def test_reject_needs_a_reason_and_records_it(
    signed_in: TestClient, admin: Headers, held: Any, admin_key: tuple[str, str]
) -> None:
    csrf = csrf_of(signed_in)
    missing = post_review(signed_in, held["id"], "reject", csrf, reason="  ")
    assert missing.status_code == 400 and "reason must be" in missing.text
    assert referral_status(signed_in, admin, held["id"]) == "held"
    response = post_review(signed_in, held["id"], "reject", csrf, reason="same card as alice")
    assert response.status_code == 303
    detail = signed_in.get(f"/v1/referrals/{held['id']}", headers=admin).json()
    assert (detail["status"], detail["note"]) == ("rejected", "same card as alice")
    assert audit_actions(signed_in, admin) == [
        ("review.reject", admin_key[1], "same card as alice")
    ]


@pytest.mark.parametrize("csrf", [None, "", "forged", "other session"])
def test_a_review_without_the_sessions_csrf_token_is_refused_and_writes_nothing(
    signed_in: TestClient, admin: Headers, held: Any, services: Services, csrf: str | None
) -> None:
    if csrf == "other session":
        other, _ = create_key(services.store, services.clock, Role.ADMIN)
        elsewhere = TestClient(signed_in.app)
        elsewhere.post("/dashboard/login", data={"key": other})
        csrf = csrf_of(elsewhere)
    for decision in ("approve", "reject"):
        response = post_review(signed_in, held["id"], decision, csrf, reason="r")
        assert response.status_code == 403, decision
    assert referral_status(signed_in, admin, held["id"]) == "held"
    assert audit_actions(signed_in, admin) == []


def test_a_review_posted_from_another_origin_is_refused(
    signed_in: TestClient, admin: Headers, held: Any
) -> None:
    response = signed_in.post(
        f"/dashboard/reviews/{held['id']}/approve",
        data={"csrf": csrf_of(signed_in)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert referral_status(signed_in, admin, held["id"]) == "held"


def test_a_review_without_a_session_is_refused(
    client: TestClient, admin: Headers, held: Any
) -> None:
    response = post_review(client, held["id"], "approve", "anything")
    assert response.status_code == 403 and "sign in again" in response.text
    assert referral_status(client, admin, held["id"]) == "held"


def test_a_decision_on_a_reward_no_longer_held_is_a_message_not_an_error(
    signed_in: TestClient, held: Any
) -> None:
    csrf = csrf_of(signed_in)
    assert post_review(signed_in, held["id"], "approve", csrf).status_code == 303
    again = post_review(signed_in, held["id"], "reject", csrf, reason="too late")
    assert again.status_code == 409 and "not held" in again.text


@pytest.mark.parametrize(
    ("path", "fields", "status"),
    [
        ("01NOSUCHREFERRAL0000000000/approve", {}, 404),
        ("not-an-id/approve", {}, 404),
        ("{held}/promote", {}, 404),
        ("{held}/reject", {"reason": "tab\there"}, 400),
        ("{held}/approve", {"reason": "x" * 501}, 400),
    ],
)
def test_bad_review_input_is_a_4xx_page(
    signed_in: TestClient, admin: Headers, held: Any, path: str, fields: dict[str, str], status: int
) -> None:
    response = signed_in.post(
        "/dashboard/reviews/" + path.format(held=held["id"]),
        data={"csrf": csrf_of(signed_in), **fields},
        follow_redirects=False,
    )
    assert response.status_code == status and 'role="alert"' in response.text
    assert referral_status(signed_in, admin, held["id"]) == "held"


def test_a_form_in_another_encoding_is_refused(signed_in: TestClient, held: Any) -> None:
    response = signed_in.post(
        f"/dashboard/reviews/{held['id']}/approve",
        json={"csrf": csrf_of(signed_in)},
        follow_redirects=False,
    )
    assert response.status_code == 415


def test_a_bad_cursor_on_the_review_queue_is_a_400_page(signed_in: TestClient) -> None:
    response = signed_in.get("/dashboard/reviews?cursor=%%%")
    assert response.status_code == 400 and "invalid cursor" in response.text


# Revenue shares held for review


@pytest.fixture
def disputed(client: TestClient, admin: Headers, ingest: Headers, services: Services) -> str:
    """A JPY program paying 10 % of sales; bob, referred by alice, bought for 4,999 yen
    and disputed it: his share (499 yen) is held. Returns the sale's id."""
    rules = {
        "tiers": [{"threshold": 1, "reward_cents": 500}],
        "share": {"tiers": [{"threshold": 1, "bps": 1000}], "months": 0, "ceiling_cents": 0},
    }
    program = {"id": "shop", "name": "Shop", "currency": "JPY", "rules": rules}
    assert client.post("/v1/programs", json=program, headers=admin).status_code == 201
    code = client.post("/v1/programs/shop/referrers", json={"user_id": "alice"}, headers=admin)
    body = {"user_id": "bob", "referral_code": code.json()["code"]}
    assert client.post("/v1/signups", json=body, headers=ingest).status_code == 201
    sale_id = 'in_1/"<b>'  # a billing system's id: a "/" and what HTML must escape
    sale = {
        "external_id": sale_id,
        "user_id": "bob",
        "amount_minor": 4999,
        "currency": "JPY",
        "occurred_at": services.clock.now().isoformat(),
        "program_id": "shop",
    }
    assert client.post("/v1/sales", json=sale, headers=ingest).status_code == 201
    hold_sale(services.store, services.clock, sale_id, "dispute du_1 opened")
    return sale_id


def share_status(client: TestClient, admin: Headers) -> list[str]:
    return [h["note"] for h in client.get("/v1/reviews/shares", headers=admin).json()["items"]]


def post_share_review(client: TestClient, decision: str, **fields: str) -> Any:
    data = {"csrf": csrf_of(client, "/dashboard/reviews"), **fields}
    return client.post(f"/dashboard/reviews/shares/{decision}", data=data, follow_redirects=False)


def test_the_review_queue_lists_a_held_share_in_its_programs_currency(
    signed_in: TestClient, disputed: str
) -> None:
    page = signed_in.get("/dashboard/reviews").text
    assert 'id="held-shares"' in page and "dispute du_1 opened" in page
    assert '<td class="num">499 JPY</td>' in page  # yen have no minor unit: not "$4.99"
    assert 'value="in_1/&#34;&lt;b&gt;"' in page  # escaped, and posted as a form field
    assert '"<b>' not in page


def test_approving_a_held_share_releases_it_and_is_audited(
    signed_in: TestClient, admin: Headers, disputed: str, admin_key: tuple[str, str]
) -> None:
    response = post_share_review(signed_in, "approve", sale_id=disputed, reason="dispute won")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/reviews?done=share_approved"
    assert share_status(signed_in, admin) == []
    assert audit_actions(signed_in, admin)[0] == ("share.approve", admin_key[1], "dispute won")
    assert "the share is payable again" in signed_in.get(response.headers["location"]).text


def test_rejecting_a_held_share_needs_a_reason(
    signed_in: TestClient, admin: Headers, disputed: str
) -> None:
    missing = post_share_review(signed_in, "reject", sale_id=disputed, reason=" ")
    assert missing.status_code == 400 and "reason must be" in missing.text
    assert share_status(signed_in, admin) == ["dispute du_1 opened"]
    done = post_share_review(signed_in, "reject", sale_id=disputed, reason="dispute lost")
    assert done.status_code == 303 and share_status(signed_in, admin) == []


@pytest.mark.parametrize(
    ("decision", "fields", "status"),
    [
        ("promote", {"reason": "r"}, 404),
        ("approve", {"sale_id": "in_404", "reason": "r"}, 404),
        ("approve", {"sale_id": "", "reason": "r"}, 400),
        ("approve", {"sale_id": "x" * 129, "reason": "r"}, 400),
        ("approve", {"reason": "tab\there"}, 400),
    ],
)
def test_bad_share_review_input_is_a_4xx_page_and_writes_nothing(
    signed_in: TestClient,
    admin: Headers,
    disputed: str,
    decision: str,
    fields: dict[str, str],
    status: int,
) -> None:
    response = post_share_review(signed_in, decision, **{"sale_id": disputed, **fields})
    assert response.status_code == status and 'role="alert"' in response.text
    assert share_status(signed_in, admin) == ["dispute du_1 opened"]


def test_a_share_review_without_the_csrf_token_is_refused(
    signed_in: TestClient, admin: Headers, disputed: str
) -> None:
    data = {"sale_id": disputed, "reason": "r", "csrf": "forged"}
    response = signed_in.post("/dashboard/reviews/shares/approve", data=data)
    assert response.status_code == 403
    assert share_status(signed_in, admin) == ["dispute du_1 opened"]


# Payout runs and reports


def test_the_report_downloads_as_the_api_serves_it(
    signed_in: TestClient, admin: Headers, alice_code: str
) -> None:
    signup(signed_in, admin, "u1", alice_code, signed_up_at="2026-10-15T00:00:00Z")
    assert signed_in.post("/v1/payouts", json={"period": "2026-10"}, headers=admin).is_success
    page = signed_in.get("/dashboard/payouts")
    assert 'href="/dashboard/payouts/2026-10/report"' in page.text
    report = signed_in.get("/dashboard/payouts/2026-10/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert 'filename="payouts-2026-10.csv"' in report.headers["content-disposition"]
    assert report.content == signed_in.get("/v1/payouts/2026-10/report", headers=admin).content
    assert report.text.splitlines()[1] == "2026-10,alice,1,1000,10.00,USD,default"


@pytest.mark.parametrize(("period", "status"), [("2026-09", 404), ("2026-13", 404), ("x", 404)])
def test_a_missing_or_malformed_report_is_a_404_page(
    signed_in: TestClient, period: str, status: int
) -> None:
    response = signed_in.get(f"/dashboard/payouts/{period}/report")
    assert response.status_code == status and 'role="alert"' in response.text


# Notifications


@pytest.fixture
def dead_letter(services: Services, held: Any) -> str:
    with services.store.read() as uow:
        event = uow.outbox.list(None, 1)[0]
    with services.store.unit_of_work() as uow:
        uow.outbox.attempt_failed(event.id, "HTTP 503", services.clock.now(), dead=True)
        uow.commit()
    return event.id


def event_status(services: Services, event_id: str) -> EventStatus:
    with services.store.read() as uow:
        event = uow.outbox.get(event_id)
    assert event is not None
    return event.status


def test_retry_sends_a_dead_letter_again_as_the_signed_in_key(
    signed_in: TestClient,
    admin: Headers,
    services: Services,
    dead_letter: str,
    admin_key: tuple[str, str],
) -> None:
    page = signed_in.get("/dashboard/notifications")
    assert f'data-event="{dead_letter}"' in page.text and "HTTP 503" in page.text
    csrf = csrf_of(signed_in, "/dashboard/notifications")
    url = f"/dashboard/notifications/{dead_letter}/retry"
    response = signed_in.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert event_status(services, dead_letter) is EventStatus.PENDING
    assert audit_actions(signed_in, admin) == [("event.retry", admin_key[1], None)]
    again = signed_in.post(url, data={"csrf": csrf}, follow_redirects=False)
    assert again.status_code == 404 and "no dead event" in again.text


def test_retry_without_the_csrf_token_is_refused_and_writes_nothing(
    signed_in: TestClient, admin: Headers, services: Services, dead_letter: str
) -> None:
    url = f"/dashboard/notifications/{dead_letter}/retry"
    empty = signed_in.post(url, content=b"", headers=FORM, follow_redirects=False)
    assert empty.status_code == 403
    assert signed_in.post(url, data={"csrf": "x"}, follow_redirects=False).status_code == 403
    assert event_status(services, dead_letter) is EventStatus.DEAD
    assert audit_actions(signed_in, admin) == []


def test_retry_of_a_malformed_event_id_is_a_404_page(signed_in: TestClient) -> None:
    response = signed_in.post(
        "/dashboard/notifications/nope/retry",
        data={"csrf": csrf_of(signed_in)},
        follow_redirects=False,
    )
    assert response.status_code == 404


def test_pages_forbid_framing_and_scripts(signed_in: TestClient) -> None:
    for page in PAGES:
        response = signed_in.get(page)
        assert response.status_code == 200, page
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


def test_the_held_status_counts_in_the_overview(
    signed_in: TestClient, held: Any, services: Services
) -> None:
    page = signed_in.get("/dashboard")
    assert re.search(r'data-state="held">.*?<td class="num">1</td>.*?\$10\.00', page.text)
    with services.store.read() as uow:
        assert uow.referrals.get(held["id"]).status is ReferralStatus.HELD  # type: ignore[union-attr]
