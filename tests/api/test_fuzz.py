"""Fuzzing the HTTP API from its own OpenAPI schema, in-process, plus hostile raw bodies.

The contract (ARCHITECTURE.md §5): bad input is a 4xx problem+json with a stable code,
never a 5xx, and a rejected request writes nothing. Schemathesis generates valid and
schema-violating requests (wrong types, missing and unknown fields, over-long strings,
wrong content types, undeclared methods); the raw-body tests at the end send what it
cannot: bodies over the size cap, pathologically nested JSON, JSON that does not parse.

Every check schemathesis has runs (`--checks all`), among them `positive_data_acceptance`:
a request the schema calls valid is accepted, or refused only for the state it meets
(404, 409, a self-referral's 422), so the schema says what the server takes. The refusals
no schema can state (the clock, opaque cursors) are excused one by one, in
`positive_data_accepted`.
"""

import base64
import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import CheckFunction
from schemathesis.specs.openapi.checks import positive_data_acceptance

from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.domain.periods import Period
from referrals.services.keys import create_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

# A fixed seed: a failure reproduces from the test alone, run after run. The coverage
# phase (boundary and invalid values for every field) is deterministic anyway.
SEED = 20260314
# Random cases per operation, on top of the ~50 coverage cases; more for the writes,
# where the use cases and the database are. Sized so the module takes well under a
# minute on two cores.
MAX_EXAMPLES = 40
MAX_EXAMPLES_POST = 100
# Huge for a field capped at 32-254 characters, yet three such fields still fit in the
# 64 KiB body cap, so these reach the validator (the cap has its own test below).
HUGE = 16_000
PROBLEM = "application/problem+json"

# Each problem code (§5) and the one status it may come with.
CODES_BY_STATUS = {
    400: {"validation_error", "currency_mismatch"},
    401: {"unauthorized"},
    403: {"forbidden"},
    404: {"not_found", "code_not_found", "program_not_found", "click_not_found", "sale_not_found"},
    # Not listed in §5; the coverage phase sends undeclared methods (TRACE, PATCH, ...).
    405: {"method_not_allowed"},
    409: {
        "already_referred",
        "referrer_exists",
        "code_taken",
        "payout_in_progress",
        "not_held",
        "not_reversible",
        "conversion_conflict",
        "program_exists",
        "program_paused",
        "program_archived",
        "click_mismatch",
        "sale_conflict",
        "refund_conflict",
        "refund_exceeds_sale",
    },
    413: {"request_too_large"},
    422: {"self_referral"},
    # Documented on every route but /healthz; the fuzzed app's limits are set out of reach.
    429: {"rate_limited"},
}


# What valid input may get: see `_config`.
VALID: list[str | int] = ["2xx", 404, 409]
VALID_SIGNUP = [*VALID, 422]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _config() -> schemathesis.Config:
    """Seed, budget, the statuses invalid input may get, and steering dictionaries.

    A dictionary entry that matches the field's schema is used only in valid cases,
    one that does not only in invalid cases, so one list serves both: `ALICE-1` takes
    a signup all the way to the database, a 16 000-character value is a huge string.
    Hypothesis draws a list's first entry most often, so each list starts with the
    value most worth sending.
    """
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "operations": [
                {"include-method": "POST", "generation": {"max-examples": MAX_EXAMPLES_POST}},
                # alice's email in another case is a self-referral (§4): refused for the
                # referrer it meets, not for its shape.
                {
                    "include-path-regex": "^/(v1/signups|signup)$",
                    "checks": {"positive_data_acceptance": {"expected-statuses": VALID_SIGNUP}},
                },
                # A tracked link redirects whatever the code (404: no landing URL).
                {
                    "include-path-regex": "^/l/",
                    "checks": {"positive_data_acceptance": {"expected-statuses": [302, 404]}},
                },
            ],
            "checks": {
                # Invalid input is refused with 400 (401 when the key is what is broken,
                # 404 when a broken path matches no route): never accepted, never a 5xx.
                "negative_data_rejection": {"expected-statuses": [400, 401, 404]},
                # Valid input is accepted, or refused for the state it meets: no such
                # referrer, code, referral or key (404), a conflict (409). Not 400, 401,
                # 403 (the key is an admin's), 429 (limits out of reach) or a 5xx.
                "positive_data_acceptance": {"expected-statuses": VALID},
            },
            "dictionaries": {
                # Only a huge one: valid signups keep random, fresh user ids, which
                # reach the write (alice's would be refused as a self-referral).
                "user_ids": {"values": ["u" * HUGE]},
                # Reads need a referrer that exists: alice does from the start.
                "referrers": {"values": ["alice", "u" * HUGE]},
                # carol's too, so a referee of one can be claimed by the other: a 409.
                "codes": {"values": ["ALICE-1", "carol-1", "c" * HUGE]},
                # alice's own email, in another case: a self-referral (§4).
                "emails": {
                    "values": ["bob@example.com", "ALICE@example.com", "b" * HUGE + "@x.com"]
                },
                # The first hour a datetime can hold, which leaves the representable
                # range once converted to UTC; far from UTC; a leap day.
                "instants": {
                    "values": [
                        "0001-01-01T00:00:00+01:00",
                        "2025-01-01T00:00:00-23:59",
                        "2024-02-29T12:00:00Z",
                    ]
                },
                # Well-formed (URL-safe) but hostile cursors: an ordinal past 64 bits,
                # a real one, a non-ASCII digit, a lone character (not base64), a huge one.
                "cursors": {
                    "values": [_cursor("9" * 19), _cursor("1"), _cursor("٣"), "A", "c" * HUGE]
                },
            },
            "parameters": {
                "body.userId": {"dictionary": "user_ids", "probability": 0.5},
                "body.user_id": {"dictionary": "user_ids", "probability": 0.5},
                "path.user_id": {"dictionary": "referrers", "probability": 0.8},
                "query.referrer_id": {"dictionary": "referrers", "probability": 0.3},
                "body.referralCode": {"dictionary": "codes", "probability": 0.7},
                "body.referral_code": {"dictionary": "codes", "probability": 0.7},
                "body.code": {"dictionary": "codes", "probability": 0.3},
                "body.email": {"dictionary": "emails", "probability": 0.3},
                "body.signed_up_at": {"dictionary": "instants", "probability": 0.5},
                "query.cursor": {"dictionary": "cursors", "probability": 0.7},
            },
        }
    )


# The OpenAPI document does not depend on storage, so it is loaded once, at collection,
# from an app on the in-memory store; each test sends its cases (`app=`) to an app on
# its own SQLite file. (`schemathesis.pytest.from_fixture` would build it per test, but
# in schemathesis 4.32.5 it sets `Node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(build(Settings(database_url="memory://"))), config=_config()
)


@pytest.fixture
def fuzz_services(tmp_path: Path) -> Iterator[Services]:
    svc = _services(tmp_path)
    yield svc
    svc.store.dispose()  # type: ignore[attr-defined]


def _services(folder: Path) -> Services:
    # Reports, once payouts are routed, go to the folder too, not the working directory.
    config = Settings(
        database_url=f"sqlite:///{folder}/f.db",
        reports_url=str(folder / "reports"),
        # Every case comes from one address, many with a broken key on purpose: the
        # limits (tests/api/test_ratelimits.py) must not answer for the contract.
        auth_failure_limit=1_000_000,
        public_rate_limit=1_000_000,
    )
    svc = build(config, migrate=True)
    # Referrers with known codes, so that generated signups can succeed and write.
    enroll(svc.store, svc.clock, "alice", email="alice@example.com", code="ALICE-1")
    enroll(svc.store, svc.clock, "carol", code="CAROL-1")
    return svc


@pytest.fixture
def fuzz_app(fuzz_services: Services) -> FastAPI:
    return create_app(fuzz_services)


@pytest.fixture
def db_path(tmp_path: Path, fuzz_services: Services) -> Path:
    return tmp_path / "f.db"


@pytest.fixture
def first_answers() -> dict[str, object]:
    """The first answer to each signup, by referral id, to hold replays to."""
    return {}


@pytest.fixture
def admin_auth(fuzz_services: Services) -> dict[str, str]:
    plaintext, _ = create_key(fuzz_services.store, fuzz_services.clock, Role.ADMIN)
    return {"Authorization": f"Bearer {plaintext}"}


def problem_details(ctx: CheckContext, response: Response, case: Case) -> None:
    """Every error is an RFC 9457 problem whose `code` belongs to its status.

    The OpenAPI document gives error responses no body, so schemathesis's own
    conformance checks pass any error body; this check holds them to §5.
    """
    if response.status_code < 400:
        return
    assert response.headers.get("content-type") == [PROBLEM], response.headers
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == response.status_code, body
    assert body["code"] in CODES_BY_STATUS.get(response.status_code, set()), body
    if response.status_code == 401:
        # RFC 6750: a 401 names the scheme the client should use.
        assert response.headers.get("www-authenticate") == ["Bearer"], response.headers


# What these checks found the server refusing while the schema allowed it (issue 22), and
# the side that changed:
# - a 405's `Allow` named one route's methods (GET or POST of /v1/keys, /v1/payouts):
#   the server names every method of the path;
# - `ttl_seconds` documented up to 90 days, refused past the setting (7 days): the
#   document states the setting of the app that serves it;
# - 60.0 for an integer (`expires_in_seconds`, `grace_seconds`, `ttl_seconds`,
#   `value_cents`), which JSON Schema's `integer` is: the server takes it as 60;
# - `ip` as `format: ip`, no JSON Schema format (any string): IPv4 or IPv6, and the
#   server refuses a zone index;
# - emails under .test refused: accepted; the format is `idn-email`, as internationalised
#   addresses are accepted too; the special-use domains still refused are described;
# - cursors documented up to 200 characters: 86, a 64-character position in base64;
# - a review's reason or a key's name of whitespace only (U+0085 alone), which the use
#   cases strip: the patterns want more than whitespace;
# - 413 and 503 `storage_unavailable` of every POST, the CSV report's body and header:
#   documented.
# Left to state or the clock, so excused: a self-referral (422, see `_config`), a cursor
# the server never issued, a period not ended, a `signed_up_at` before 1970 or to come,
# a rule version's `effective_from` less than 5 s ahead; and, as no JSON Schema states an
# order across a list's items, tiers whose thresholds do not rise strictly from 1; nor one
# across two fields: a simulation's, checks report's or funnel's window (`to` after `from`, by at
# most 366 days).

# Payout periods and imported signups start here (services/signups.py).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def positive_data_accepted(ctx: CheckContext, response: Response, case: Case) -> None:
    """Schemathesis's `positive_data_acceptance`, relaxed on purpose for the refusals that
    no JSON Schema can state, each a 400 for one field and only when that field earns it:

    - a cursor the server never issued: a cursor is opaque (a position in URL-safe
      base64), so the schema can give its alphabet and length, not which tokens decode
      to a position; others are refused with 400 `invalid cursor`;
    - a payout period that has not ended yet, a `signed_up_at` before 1970 or in the
      future, an `effective_from` less than 5 s ahead: bounds that move with the clock
      (§5: 400), described in the fields' text;
    - a program's tiers out of order: thresholds must rise strictly from 1, an order
      across the list's items that JSON Schema cannot state (the field's text says it);
    - a window whose `to` is not after its `from`, or more than 366 days after it.
    """
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if (
        positive
        and response.status_code == 400
        and _refused_for_the_clock_or_a_cursor(case, response)
    ):
        return
    positive_data_acceptance(ctx, response, case)


def _refused_for_the_clock_or_a_cursor(case: Case, response: Response) -> bool:
    now = datetime.now(UTC)
    body: dict[str, Any] = case.body if isinstance(case.body, dict) else {}
    if (case.query or {}).get("cursor") is not None:
        return bool(response.json()["detail"] == "invalid cursor")
    if case.operation.label == "POST /v1/payouts" and body.get("period") is not None:
        return not Period.parse(body["period"]).has_ended(now)
    if body.get("signed_up_at") is not None:
        return not EPOCH <= datetime.fromisoformat(body["signed_up_at"]) <= now
    if "/rules" in case.operation.label and response.json().get("errors", [{}])[0].get("loc") == [
        "effective_from"
    ]:
        return True
    window = case.operation.label.endswith(("/rules/simulate", "/checks/report", "/funnel"))
    if window and response.json().get("errors", [{}])[0].get("loc") == ["to"]:
        return True  # a window's `to` after its `from`, by at most 366 days: two fields
    if case.operation.label in ("POST /v1/sales", "POST /v1/refunds"):
        if response.json().get("code") == "currency_mismatch":
            return True  # the program's currency: state, not schema
        if body.get("occurred_at") is not None:
            at = datetime.fromisoformat(body["occurred_at"])
            return not EPOCH <= at <= now + timedelta(minutes=5)
    rules = body.get("rules") if isinstance(body.get("rules"), dict) else {}
    share = rules.get("share") if isinstance(rules.get("share"), dict) else {}
    if _out_of_order(share.get("tiers")):
        return True  # a revenue share's tiers: the same order as the reward tiers'
    return _out_of_order(rules.get("tiers"))


def _out_of_order(tiers: Any) -> bool:
    if isinstance(tiers, list) and tiers and all(isinstance(t, dict) for t in tiers):
        thresholds = [t.get("threshold") for t in tiers]
        return thresholds[0] != 1 or thresholds != sorted(set(thresholds))
    return False


# No `checks=`: every check the config enables, which is all of them, the one relaxed
# above in place of its original.
RELAXED: list[CheckFunction] = [positive_data_acceptance]
ADDED: list[CheckFunction] = [positive_data_accepted, problem_details]


def _rows(db_path: Path) -> tuple[set[str], set[str]]:
    """Referral ids and referrer ids, read from the file, not through the app under test."""
    with sqlite3.connect(db_path) as conn:
        referrals = {row[0] for row in conn.execute("SELECT id FROM referrals")}
        referrers = {row[0] for row in conn.execute("SELECT user_id FROM referrers")}
    return referrals, referrers


def _reported_referral(case: Case, response: Response) -> str | None:
    """The referral id a successful signup answered with, new or replayed."""
    if not 200 <= response.status_code < 300:
        return None
    if case.operation.label == "POST /signup":
        legacy_id: str = response.json()["referralId"]
        return legacy_id
    if case.operation.label == "POST /v1/signups":
        referral_id: str = response.json()["referral"]["id"]
        return referral_id
    return None


@schema.parametrize()
# One database per operation, shared by its cases on purpose: state builds up (referrers,
# referrals, replays, conflicts) and each case is compared with the state just before it.
# Generation speed is not under test; on a loaded machine it must not fail the run.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_fuzzed_requests_keep_the_contract(
    case: Case,
    fuzz_app: FastAPI,
    admin_auth: dict[str, str],
    db_path: Path,
    first_answers: dict[str, object],
) -> None:
    referrals_before, referrers_before = _rows(db_path)
    # The admin key gets each case past authorization to validation and the use cases;
    # cases that break the Authorization header on purpose are sent as generated and
    # must get a 401 problem.
    negated = case.operation.schema.is_security_param_negated(case)
    headers = {} if negated else dict(admin_auth)  # a copy: the transport adds to it
    response = case.call_and_validate(
        headers=headers, app=fuzz_app, excluded_checks=RELAXED, additional_checks=ADDED
    )
    referrals_after, referrers_after = _rows(db_path)

    reported = _reported_referral(case, response)
    if response.status_code >= 400:
        # Rejected: nothing written, not even the referee's auto-enrollment.
        assert (referrals_after, referrers_after) == (referrals_before, referrers_before)
    elif reported is not None:
        # A signup writes exactly the referral it reports; a replay writes nothing.
        assert referrals_after == referrals_before | {reported}
        if response.status_code == 201:
            assert reported not in referrals_before
        # A replay answers what the first signup answered (§5), field for field.
        assert response.json() == first_answers.setdefault(reported, response.json())
    else:
        assert referrals_after == referrals_before


# --- Linked calls ----------------------------------------------------------------------

# Chains of calls linked by what schemathesis infers from the schema: a listed referral
# read, reversed, approved or rejected by its id, a listed event retried. Its stateful
# checks run on them with the others, though with little to find here: `use_after_free`
# needs a DELETE (the API has none), and `ensure_resource_availability` a chain that
# starts with a creating POST, which its dependency analysis does not start one with (it
# takes `user_id` and `device_id` for references to resources no operation creates).
# Key rotation and revocation are left out: a chain reaches the acting admin key through
# `GET /v1/keys`, and revoking it refuses every later call (tests/api/test_keys.py).
# Programs and their members are left out too: their ids are slugs no list links to
# the referrals chains, and the calls they add would crowd the chains out of the 25
# drawn (they are fuzzed one call at a time above, and in test_programs.py). So are
# sales and refunds, for the same reason (keyed by the billing system's ids; test_sales.py),
# and with them the queue of held shares, which only sales fill.
Linked = schema.exclude(
    path_regex="^/v1/(keys/|programs|sales|refunds|reviews/shares)"
).as_state_machine()
CHAINS = 25
STEPS = 6


def test_linked_calls_keep_the_contract(tmp_path: Path) -> None:
    sent: list[tuple[str, int]] = []
    chains = itertools.count()

    class Chain(Linked):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Each chain on a database of its own, seeded alike: Hypothesis draws a chain
            # again (to explore, to shrink) and must meet the state it met before.
            folder = tmp_path / f"chain-{next(chains)}"
            folder.mkdir()
            self.svc = svc = _services(folder)
            # Referrals for the lists to start chains with: one pending, one held for
            # review (a disposable address), for reversals, approvals and rejections.
            for user, email in (("bob", None), ("erin", "erin@mailinator.com")):
                sign_up(svc.store, svc.clock, svc.rules.current(svc.clock), user, "ALICE-1", email)
            self.app = create_app(svc)
            plaintext, _ = create_key(svc.store, svc.clock, Role.ADMIN)
            self.auth = {"Authorization": f"Bearer {plaintext}"}

        def teardown(self) -> None:
            self.svc.store.dispose()  # type: ignore[attr-defined]
            super().teardown()

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            negated = case.operation.schema.is_security_param_negated(case)  # as above
            return {"app": self.app, "headers": {} if negated else dict(self.auth)}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            sent.append((case.operation.label, response.status_code))
            case.validate_response(
                response,
                excluded_checks=RELAXED,
                additional_checks=ADDED,
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Chain.run(
        settings=settings(
            max_examples=CHAINS,
            stateful_step_count=STEPS,
            derandomize=True,  # the fixed seed of a state machine
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert len(sent) >= CHAINS * 2  # every chain ran at least two calls
    # Chains went from the list to the referrals it named (a random id would be a 404).
    by_id = ("GET /v1/referrals/{", "POST /v1/referrals/{", "POST /v1/reviews/{")
    assert any(label.startswith(by_id) and status in (200, 409) for label, status in sent)


# --- Raw bodies schemathesis cannot produce -------------------------------------------


@pytest.fixture
def client(fuzz_app: FastAPI) -> TestClient:
    return TestClient(fuzz_app)


RAW_BODIES = {
    # A valid signup but for its size, over the 64 KiB cap: refused before parsing.
    "over_cap": (
        b'{"user_id": "bob", "referral_code": "ALICE-1", "email": "'
        + b"a" * 70_000
        + b'@example.com"}',
        413,
        "request_too_large",
    ),
    # 30 000 levels in 60 000 bytes, under the cap: a parser recursing per level
    # overflows the stack; that must surface as bad input, not a crash.
    "deep_arrays": (b"[" * 30_000 + b"]" * 30_000, 400, "validation_error"),
    "deep_objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "validation_error"),
    # Python refuses integers over 4 300 digits with a ValueError, not a JSON error.
    "huge_integer": (
        b'{"user_id": ' + b"9" * 50_000 + b', "referral_code": "ALICE-1"}',
        400,
        "validation_error",
    ),
    "truncated": (b'{"user_id": "bob", "referral_code": "ALI', 400, "validation_error"),
    "trailing_garbage": (b'{"user_id": "bob", "referral_code": "A-1"} x', 400, "validation_error"),
    "not_utf8": (b'{"user_id": "b\xff\xfe", "referral_code": "ALICE-1"}', 400, "validation_error"),
}


@pytest.mark.parametrize("route", ["/signup", "/v1/signups", "/v1/referrers"])
@pytest.mark.parametrize("name", sorted(RAW_BODIES))
def test_hostile_raw_body_is_a_problem_and_writes_nothing(
    client: TestClient, admin_auth: dict[str, str], db_path: Path, route: str, name: str
) -> None:
    raw, status, code = RAW_BODIES[name]
    before = _rows(db_path)
    headers = {**admin_auth, "Content-Type": "application/json"}
    response = client.post(route, content=raw, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code
    assert _rows(db_path) == before


def test_after_hostile_bodies_only_the_valid_signup_is_listed(
    client: TestClient, admin_auth: dict[str, str]
) -> None:
    headers = {**admin_auth, "Content-Type": "application/json"}
    for raw, status, _ in RAW_BODIES.values():
        assert client.post("/v1/signups", content=raw, headers=headers).status_code == status
    # bob again, validly: 201 and not a 200 replay, so the over-cap bob was never recorded.
    valid = client.post(
        "/v1/signups", json={"user_id": "bob", "referral_code": "ALICE-1"}, headers=admin_auth
    )
    assert valid.status_code == 201
    listed = client.get("/v1/referrals", headers=admin_auth).json()["items"]
    assert [item["id"] for item in listed] == [valid.json()["referral"]["id"]]
