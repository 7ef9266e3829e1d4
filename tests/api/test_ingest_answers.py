"""What an ingest key reads back: every route of the app walked with one.

The database holds other users with emails and money (paid, payable, held,
awaiting a conversion). Each route is called with an ingest key and a realistic
request, replays of what other requests recorded included; no answer may carry an
email the request did not send, nor a `*_cents` amount but the few an ingest
caller needs (the reward of the signup it named, the value it sent).

Every route of the app is listed in ROUTES with how an ingest key may use it, so
a route added later fails `test_every_route_is_walked` until it is listed here
with a request: a new answer is checked before anyone can rely on it.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

Headers = dict[str, str]

ALICE, BOB, CAROL, DAVE = (
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@mailinator.com",  # disposable: dave's reward is held for review
)
STORED_EMAILS = (ALICE, BOB, CAROL, DAVE)
# A key holding money. An ingest caller may read back only the reward of the referral
# its request named (its backend shows it to the user it signed up) and a conversion's
# own value (`Call.money`); never a referrer's totals, nor a payout's.
MONEY = re.compile(r"(?i)(cents|amount|minor)$")


@dataclass(frozen=True)
class World:
    code: str  # alice's
    ingest_key: str  # its plaintext, for the dashboard's sign-in form
    referral_id: str  # bob's referral, paid
    event_id: str


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    form: dict[str, str] | None = None
    money: frozenset[str] = frozenset()  # the MONEY keys this answer may carry

    def sent_emails(self) -> set[str]:
        return {v.casefold() for v in _strings(self.json) if "@" in v} | {
            v.casefold() for v in (self.form or {}).values() if "@" in v
        }


class Access(Enum):
    INGEST = "an ingest key may call it: 2xx"
    REFUSED = "refused to an ingest key: 401, 403, or the dashboard's sign-in"
    PUBLIC = "needs no key (the answer is still checked)"


SIGNUP_REWARD = frozenset({"reward_cents"})
LEGACY_REWARD = frozenset({"rewardCents", "rewardAmount"})
CONVERSION = frozenset({"value_cents", "reward_cents"})
# A sale's answer: what it sent, what its refunds took, and the share the sale earned.
SALE = frozenset(
    {"amount_minor", "refunded_minor", "awarded_minor", "ceiling_minor", "tier_cents"}
    | {"reversed_minor"}
)
BOB_SALE = {
    "external_id": "in-ingest-1",
    "user_id": "bob",
    "amount_minor": 4999,
    "currency": "USD",
    "occurred_at": "2026-01-20T12:00:00Z",
    "kind": "purchase",
}


KEY_ID = "01J0000000000000000000000K"  # the shape of a key's id: refused before any lookup
CAROL_CONVERSION = {
    "user_id": "carol",
    "event": "purchase",
    "external_id": "o-carol",
    "value_cents": 5000,
}


def _get(path: str) -> Call:
    return Call("GET", path)


def _post(path: str, json: Any = None, money: frozenset[str] = frozenset()) -> Call:
    return Call("POST", path, json, money=money)


Calls = Callable[[World], list[Call]]
ROUTES: dict[str, tuple[Access, Calls]] = {
    "GET /openapi.json": (Access.PUBLIC, lambda w: [_get("/openapi.json")]),
    "MOUNT /static-offline-docs": (
        Access.PUBLIC,
        lambda w: [_get("/static-offline-docs/swagger-ui.css")],
    ),
    "GET /docs": (Access.PUBLIC, lambda w: [_get("/docs")]),
    "GET /docs/oauth2-redirect": (Access.PUBLIC, lambda w: [_get("/docs/oauth2-redirect")]),
    "GET /redoc": (Access.PUBLIC, lambda w: [_get("/redoc")]),
    "GET /healthz": (Access.PUBLIC, lambda w: [_get("/healthz")]),
    "GET /livez": (Access.PUBLIC, lambda w: [_get("/livez")]),
    "GET /readyz": (Access.PUBLIC, lambda w: [_get("/readyz")]),
    "GET /": (Access.PUBLIC, lambda w: [_get("/")]),
    "POST /signup": (
        Access.INGEST,
        lambda w: [
            _post("/signup", {"userId": "carol", "referralCode": w.code}, LEGACY_REWARD),
            _post(
                "/signup",
                {"userId": "erin", "referralCode": w.code, "email": "erin@example.net"},
                LEGACY_REWARD,
            ),
        ],
    ),
    "POST /v1/referrers": (
        Access.INGEST,
        lambda w: [
            _post("/v1/referrers", {"user_id": "alice"}),
            _post("/v1/referrers", {"user_id": "bob", "email": "someone@example.net"}),
            _post("/v1/referrers", {"user_id": "frank", "email": "frank@example.net"}),
        ],
    ),
    "POST /v1/programs/{program_id}/referrers": (
        Access.INGEST,
        lambda w: [
            _post("/v1/programs/default/referrers", {"user_id": "alice"}),
            _post("/v1/programs/default/referrers", {"user_id": "bob", "email": "x@example.net"}),
        ],
    ),
    "GET /v1/referrers/{user_id}": (Access.REFUSED, lambda w: [_get("/v1/referrers/alice")]),
    "GET /v1/programs/{program_id}/referrers/{user_id}": (
        Access.REFUSED,
        lambda w: [_get("/v1/programs/default/referrers/alice")],
    ),
    "GET /v1/programs/{program_id}/referrers/{user_id}/referrals": (
        Access.REFUSED,
        lambda w: [_get("/v1/programs/default/referrers/alice/referrals")],
    ),
    "GET /v1/referrers/{user_id}/referrals": (
        Access.REFUSED,
        lambda w: [_get("/v1/referrers/alice/referrals")],
    ),
    "POST /v1/signups": (
        Access.INGEST,
        lambda w: [
            _post("/v1/signups", {"user_id": "bob", "referral_code": w.code}, SIGNUP_REWARD),
            _post(
                "/v1/signups",
                {"user_id": "carol", "referral_code": w.code, "email": "other@example.net"},
                SIGNUP_REWARD,
            ),
            _post(
                "/v1/signups",
                {"user_id": "grace", "referral_code": w.code, "email": "grace@example.net"},
                SIGNUP_REWARD,
            ),
        ],
    ),
    "POST /v1/conversions": (
        Access.INGEST,
        lambda w: [
            _post("/v1/conversions", CAROL_CONVERSION, CONVERSION),
            _post(
                "/v1/conversions",
                {"user_id": "grace", "event": "purchase", "external_id": "o-grace"}
                | {"value_cents": 2000},
                CONVERSION,
            ),
        ],
    ),
    "POST /v1/sales": (
        Access.INGEST,
        lambda w: [
            _post("/v1/sales", BOB_SALE, SALE),
            _post("/v1/sales", BOB_SALE, SALE),  # a replay
            _post("/v1/sales", BOB_SALE | {"external_id": "in-ingest-2", "user_id": "zoe"}, SALE),
        ],
    ),
    "POST /v1/refunds": (
        Access.INGEST,
        lambda w: [
            _post(
                "/v1/refunds",
                {"sale_external_id": "in-ingest-1", "amount_minor": 999, "external_id": "re-1"},
                SALE,
            )
        ],
    ),
    "POST /v1/sales/{external_id}/share/{decision}": (
        Access.REFUSED,
        lambda w: [_post("/v1/sales/in-ingest-1/share/approve", {"reason": "settled"})],
    ),
    "GET /v1/programs/{program_id}/funnel": (
        Access.REFUSED,
        lambda w: [_get("/v1/programs/default/funnel")],
    ),
    "GET /v1/referrals": (Access.REFUSED, lambda w: [_get("/v1/referrals")]),
    "POST /v1/payouts": (
        Access.REFUSED,
        lambda w: [_post("/v1/payouts", {"period": "2026-01", "dry_run": True})],
    ),
    "GET /v1/payouts": (Access.REFUSED, lambda w: [_get("/v1/payouts")]),
    "GET /v1/payouts/{period}": (Access.REFUSED, lambda w: [_get("/v1/payouts/2026-01")]),
    "GET /v1/payouts/{period}/report": (
        Access.REFUSED,
        lambda w: [_get("/v1/payouts/2026-01/report")],
    ),
    "GET /v1/events": (Access.REFUSED, lambda w: [_get("/v1/events")]),
    "POST /v1/events/{event_id}/retry": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/events/{w.event_id}/retry")],
    ),
    "GET /v1/referrals/{referral_id}": (
        Access.REFUSED,
        lambda w: [_get(f"/v1/referrals/{w.referral_id}")],
    ),
    "POST /v1/referrals/{referral_id}/reverse": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/referrals/{w.referral_id}/reverse", {"reason": "refunded"})],
    ),
    "GET /v1/reviews": (Access.REFUSED, lambda w: [_get("/v1/reviews")]),
    "GET /v1/reviews/shares": (Access.REFUSED, lambda w: [_get("/v1/reviews/shares")]),
    "POST /v1/reviews/{referral_id}/approve": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/reviews/{w.referral_id}/approve")],
    ),
    "POST /v1/reviews/{referral_id}/reject": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/reviews/{w.referral_id}/reject", {"reason": "no"})],
    ),
    "GET /v1/audit": (Access.REFUSED, lambda w: [_get("/v1/audit")]),
    "GET /v1/programs": (Access.REFUSED, lambda w: [_get("/v1/programs")]),
    "POST /v1/programs": (
        Access.REFUSED,
        lambda w: [_post("/v1/programs", {"id": "mine", "name": "Mine"})],
    ),
    "GET /v1/programs/{program_id}": (Access.REFUSED, lambda w: [_get("/v1/programs/default")]),
    "PATCH /v1/programs/{program_id}": (
        Access.REFUSED,
        lambda w: [Call("PATCH", "/v1/programs/default", {"status": "paused"})],
    ),
    "POST /v1/programs/{program_id}/rules/simulate": (
        Access.REFUSED,
        lambda w: [
            _post(
                "/v1/programs/default/rules/simulate",
                {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"},
            )
        ],
    ),
    "GET /v1/programs/{program_id}/checks/report": (
        Access.REFUSED,
        lambda w: [
            _get(
                "/v1/programs/default/checks/report?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"
            )
        ],
    ),
    "GET /v1/programs/{program_id}/rules": (
        Access.REFUSED,
        lambda w: [_get("/v1/programs/default/rules")],
    ),
    "POST /v1/programs/{program_id}/rules": (
        Access.REFUSED,
        lambda w: [_post("/v1/programs/default/rules", {"rules": {"hold_days": 1}})],
    ),
    "GET /v1/keys": (Access.REFUSED, lambda w: [_get("/v1/keys")]),
    "POST /v1/keys": (
        Access.REFUSED,
        lambda w: [_post("/v1/keys", {"role": "admin", "name": "mine now"})],
    ),
    "POST /v1/keys/{key_id}/revoke": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/keys/{KEY_ID}/revoke", {"reason": "leaked"})],
    ),
    "POST /v1/keys/{key_id}/rotate": (
        Access.REFUSED,
        lambda w: [_post(f"/v1/keys/{KEY_ID}/rotate", {"grace_seconds": 0})],
    ),
    "POST /v1/referrers/{user_id}/portal-link": (
        Access.INGEST,
        lambda w: [_post("/v1/referrers/alice/portal-link", {"ttl_seconds": 3600})],
    ),
    # Without the link's token: the page says nothing of the referrer.
    "GET /r/{code:path}": (Access.PUBLIC, lambda w: [_get(f"/r/{w.code}")]),
    "GET /metrics": (Access.REFUSED, lambda w: [_get("/metrics")]),
    "GET /dashboard/login": (Access.PUBLIC, lambda w: [_get("/dashboard/login")]),
    # Tracking: a tracked link redirects anyone (a click has no key), and the snippet is
    # a static file for the product's pages.
    "GET /l/{code}": (Access.PUBLIC, lambda w: [_get(f"/l/{w.code}"), _get("/l/NOBODY")]),
    "HEAD /l/{code}": (Access.PUBLIC, lambda w: [Call("HEAD", f"/l/{w.code}")]),
    "GET /v1/snippet.js": (Access.PUBLIC, lambda w: [_get("/v1/snippet.js")]),
    # Stripe's events carry their own signature: an unsigned one is refused, keys or not.
    "POST /v1/integrations/stripe/webhook": (
        Access.PUBLIC,
        lambda w: [_post("/v1/integrations/stripe/webhook", {"type": "invoice.paid"})],
    ),
    "GET /dashboard/programs/{program_id}/funnel": (
        Access.REFUSED,
        lambda w: [_get("/dashboard/programs/default/funnel")],
    ),
    "POST /dashboard/login": (
        Access.REFUSED,
        lambda w: [Call("POST", "/dashboard/login", form={"key": w.ingest_key})],
    ),
    "POST /dashboard/logout": (Access.REFUSED, lambda w: [_post("/dashboard/logout")]),
    "GET /dashboard": (Access.REFUSED, lambda w: [_get("/dashboard")]),
    "GET /dashboard/payouts": (Access.REFUSED, lambda w: [_get("/dashboard/payouts")]),
    "GET /dashboard/payouts/{period}/report": (
        Access.REFUSED,
        lambda w: [_get("/dashboard/payouts/2026-01/report")],
    ),
    "GET /dashboard/reviews": (Access.REFUSED, lambda w: [_get("/dashboard/reviews")]),
    "POST /dashboard/reviews/{referral_id}/{decision}": (
        Access.REFUSED,
        lambda w: [_post(f"/dashboard/reviews/{w.referral_id}/approve")],
    ),
    "POST /dashboard/reviews/shares/{decision}": (
        Access.REFUSED,
        lambda w: [_post("/dashboard/reviews/shares/approve", {"sale_id": "in_1", "reason": "r"})],
    ),
    "GET /dashboard/notifications": (Access.REFUSED, lambda w: [_get("/dashboard/notifications")]),
    "GET /dashboard/programs": (Access.REFUSED, lambda w: [_get("/dashboard/programs")]),
    "GET /dashboard/programs/{program_id}/simulate": (
        Access.REFUSED,
        lambda w: [_get("/dashboard/programs/default/simulate")],
    ),
    "POST /dashboard/notifications/{event_id}/retry": (
        Access.REFUSED,
        lambda w: [_post(f"/dashboard/notifications/{w.event_id}/retry")],
    ),
}


# Both kinds of program: in one that pays on conversion, a conversion's answer
# carries the referral it earned.
PROGRAMS = pytest.mark.parametrize(
    "settings_overrides",
    [{}, {"reward_trigger": "conversion", "conversion_event": "purchase"}],
    ids=["pays-on-signup", "pays-on-conversion"],
)


@pytest.fixture
def world(client: TestClient, admin: Headers, ingest: Headers) -> World:
    """Alice refers bob (paid in January 2026), carol (earned, unpaid) and dave (held)."""

    def post(path: str, body: Any) -> Any:
        response = client.post(path, json=body, headers=admin)
        assert response.status_code in (200, 201), response.text
        return response.json()

    code = post("/v1/referrers", {"user_id": "alice", "email": ALICE})["code"]
    # In a conversion program bob's conversion comes first, so his imported signup
    # earns its reward at once, in January.
    post("/v1/conversions", {"user_id": "bob", "event": "purchase", "external_id": "o-bob"})
    bob = {"user_id": "bob", "referral_code": code, "email": BOB}
    paid = post("/v1/signups", bob | {"signed_up_at": "2026-01-15T12:00:00Z"})["referral"]
    assert post("/v1/payouts", {"period": "2026-01"})["total_cents"] > 0
    post("/v1/signups", {"user_id": "carol", "referral_code": code, "email": CAROL})
    post("/v1/conversions", CAROL_CONVERSION)
    post("/v1/signups", {"user_id": "dave", "referral_code": code, "email": DAVE})
    post("/v1/conversions", {"user_id": "dave", "event": "purchase", "external_id": "o-dave"})
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert alice["paid_cents"] > 0 and alice["payable_cents"] > 0 and alice["held_cents"] > 0
    event_id = client.get("/v1/events", headers=admin).json()["items"][0]["id"]
    key = ingest["Authorization"].removeprefix("Bearer ")
    return World(code=code, ingest_key=key, referral_id=paid["id"], event_id=event_id)


def route_keys(app: FastAPI) -> set[str]:
    keys = set()
    for route in iter_route_contexts(app.routes):
        # HEAD beside GET is the GET's; a HEAD route of its own is listed as such.
        methods = (route.methods or set()) - {"HEAD"} or (route.methods or set())
        keys |= {f"{m} {route.path}" for m in methods} if methods else {f"MOUNT {route.path}"}
    return keys


def test_every_route_is_walked(client: TestClient) -> None:
    """A new route must be listed in ROUTES with its request, so its answer is checked."""
    assert route_keys(client.app) == set(ROUTES)  # type: ignore[arg-type]


@PROGRAMS
def test_an_ingest_key_reads_no_other_users_email_or_money(
    client: TestClient, ingest: Headers, world: World
) -> None:
    client.follow_redirects = False
    leaks, wrong_access = [], []
    for name, (access, calls) in ROUTES.items():
        for call in calls(world):
            response = client.request(
                call.method, call.path, json=call.json, data=call.form, headers=ingest
            )
            if _access(response) is not access and access is not Access.PUBLIC:
                wrong_access.append(f"{name}: {response.status_code} {response.text[:200]}")
            leaks += [f"{name} {call.json}: {leak}" for leak in _leaks(call, response)]
    assert not wrong_access, "\n".join(wrong_access)
    assert not leaks, "\n".join(leaks)


def test_an_ingest_key_reads_back_the_referrer_it_enrolled_without_money(
    client: TestClient, ingest: Headers
) -> None:
    body = {"user_id": "erin", "email": "erin@example.net", "code": "ERIN"}
    response = client.post("/v1/referrers", json=body, headers=ingest)
    assert response.status_code == 201
    summary = response.json()
    assert set(summary) == {
        "user_id",
        "program_id",
        "code",
        "email",
        "referral_count",
        "created_at",
    }
    assert (summary["code"], summary["email"], summary["referral_count"]) == (
        "ERIN",
        body["email"],
        0,
    )


def test_enrolling_again_with_an_ingest_key_reads_no_stored_email(
    client: TestClient, ingest: Headers, alice_code: str
) -> None:
    response = client.post("/v1/referrers", json={"user_id": "alice"}, headers=ingest)
    assert response.status_code == 200
    assert (response.json()["code"], response.json()["email"]) == (alice_code, None)


def test_an_admin_key_reads_the_whole_referrer_when_enrolling_again(
    client: TestClient, admin: Headers, alice_code: str
) -> None:
    again = client.post("/v1/referrers", json={"user_id": "alice"}, headers=admin)
    assert again.status_code == 200
    assert again.json() == client.get("/v1/referrers/alice", headers=admin).json()
    assert again.json()["email"] == "alice@example.com"


def test_an_ingest_replay_of_the_same_signup_answers_the_same_body(
    client: TestClient, ingest: Headers, alice_code: str
) -> None:
    body = {"user_id": "bob", "referral_code": alice_code, "email": "Bob@Example.com"}
    first = client.post("/v1/signups", json=body, headers=ingest)
    again = client.post("/v1/signups", json=body, headers=ingest)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["referral"]["email"] == body["email"]


def test_an_ingest_replay_without_the_email_reads_none_back(
    client: TestClient, admin: Headers, ingest: Headers, alice_code: str
) -> None:
    body = {"user_id": "bob", "referral_code": alice_code}
    client.post("/v1/signups", json=body | {"email": "bob@example.com"}, headers=ingest)
    replay = client.post("/v1/signups", json=body, headers=ingest).json()["referral"]
    assert replay["email"] is None and replay["reward_cents"] == 1000
    by_admin = client.post("/v1/signups", json=body, headers=admin).json()["referral"]
    assert by_admin["email"] == "bob@example.com"


def _access(response: httpx.Response) -> Access:
    to_sign_in = response.is_redirect and "/dashboard/login" in response.headers["location"]
    if response.status_code in (401, 403) or to_sign_in:
        return Access.REFUSED
    return Access.INGEST if response.is_success else Access.PUBLIC


def _leaks(call: Call, response: httpx.Response) -> Iterator[str]:
    """Another user's email anywhere in the answer, or money the call may not read."""
    others = {e for e in STORED_EMAILS if e.casefold() not in call.sent_emails()}
    text = response.text.casefold()
    yield from (f"the email {e}" for e in sorted(others) if e.casefold() in text)
    if response.headers.get("content-type", "").startswith("application/json"):
        for key, value in _items(response.json()):
            if MONEY.search(key) and isinstance(value, int | float) and key not in call.money:
                yield f"{key}={value}"


def _items(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from _items(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _items(inner)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for inner in value.values() if isinstance(value, dict) else value:
            yield from _strings(inner)
