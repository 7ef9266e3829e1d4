import json
from typing import Any
from urllib.parse import urlencode

import pytest

from referrals.adapters.clock import SystemClock
from referrals.aws import api
from referrals.aws.api import handler
from referrals.aws.runtime import services
from referrals.domain.model import Role
from referrals.services.keys import create_key
from tests.aws.conftest import Aws, LambdaContext, rest_event


def key(aws: Aws, role: Role = Role.ADMIN) -> dict[str, str]:
    plaintext, _ = create_key(aws.store, SystemClock(), role)
    return {"Authorization": f"Bearer {plaintext}"}


def test_healthz_through_api_gateway(aws: Aws) -> None:
    response = handler(rest_event("GET", "/healthz"), LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}


def test_enroll_and_signup_write_to_dynamodb(aws: Aws) -> None:
    headers = key(aws)
    enrolled = handler(
        rest_event("POST", "/v1/referrers", {"user_id": "alice", "code": "ALICE"}, headers),
        LambdaContext(),
    )
    assert enrolled["statusCode"] == 201
    signup = handler(
        rest_event("POST", "/signup", {"userId": "bob", "referralCode": "alice"}, headers),
        LambdaContext(),
    )
    assert signup["statusCode"] == 200
    body = json.loads(signup["body"])
    assert (body["rewardAmount"], body["referralCount"], body["rewardCents"]) == (10, 1, 1000)
    with aws.store.read() as uow:
        referral = uow.referrals.by_referee("bob")
        assert referral is not None and referral.reward_cents == 1000
        assert uow.referrers.get("alice").referral_count == 1  # type: ignore[union-attr]


def test_bad_input_is_a_problem_response_not_a_500(aws: Aws) -> None:
    event = rest_event("POST", "/signup", None, key(aws))
    event["body"] = "{not json"
    response = handler(event, LambdaContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "validation_error"


def test_missing_key_is_401(aws: Aws) -> None:
    response = handler(rest_event("GET", "/v1/referrals"), LambdaContext())
    assert response["statusCode"] == 401


DEFAULT_DOMAIN = "a1b2c3d4e5.execute-api.us-east-2.amazonaws.com"


def _header(response: dict[str, Any], name: str) -> list[str]:
    """A response header's values, wherever Mangum put them."""
    values = [v for k, v in response.get("headers", {}).items() if k.lower() == name]
    for k, vs in response.get("multiValueHeaders", {}).items():
        if k.lower() == name:
            values += vs
    return values


def test_the_dashboard_under_the_default_url_keeps_the_stage_in_its_urls(aws: Aws) -> None:
    plaintext, _ = create_key(aws.store, SystemClock(), Role.ADMIN)
    host = {"Host": DEFAULT_DOMAIN, "Origin": f"https://{DEFAULT_DOMAIN}"}
    form = {"Content-Type": "application/x-www-form-urlencoded", **host}
    login = rest_event("POST", "/dashboard/login", None, form)
    login["body"] = urlencode({"key": plaintext})
    signed_in = handler(login, LambdaContext())
    assert signed_in["statusCode"] == 303
    assert _header(signed_in, "location") == ["/prod/dashboard"]
    [cookie] = _header(signed_in, "set-cookie")
    assert "Path=/prod/dashboard" in cookie
    page = handler(
        rest_event("GET", "/dashboard", None, {**host, "Cookie": cookie.split(";")[0]}),
        LambdaContext(),
    )
    assert page["statusCode"] == 200
    assert 'href="/prod/dashboard/payouts"' in page["body"]
    assert 'action="/prod/dashboard/logout"' in page["body"]


def test_a_portal_link_carries_the_stage_only_under_the_default_url(aws: Aws) -> None:
    headers = key(aws)
    handler(rest_event("POST", "/v1/referrers", {"user_id": "alice"}, headers), LambdaContext())
    urls = {}
    for host in (DEFAULT_DOMAIN, "api.example.com"):
        issued = handler(
            rest_event("POST", "/v1/referrers/alice/portal-link", {}, {**headers, "Host": host}),
            LambdaContext(),
        )
        assert issued["statusCode"] == 201
        urls[host] = json.loads(issued["body"])["url"]
    assert urls[DEFAULT_DOMAIN].startswith("/prod/r/")
    assert urls["api.example.com"].startswith("/r/")


def test_failed_authentication_is_limited_by_the_count_in_the_table(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRALS_AUTH_FAILURE_LIMIT", "2")
    bad = {"Authorization": "Bearer rk_not-a-real-key"}
    for _ in range(2):
        refused = handler(rest_event("GET", "/v1/referrals", None, bad), LambdaContext())
        assert refused["statusCode"] == 401
    # Another instance (a cold start) knows nothing of them but what the table holds.
    services.cache_clear()
    api._adapter = None
    limited = handler(rest_event("GET", "/v1/referrals", None, bad), LambdaContext())
    assert limited["statusCode"] == 429
    assert json.loads(limited["body"])["code"] == "rate_limited"
    assert 1 <= int(_header(limited, "retry-after")[0]) <= 60
    # The address is API Gateway's sourceIp: another caller is not limited.
    event = rest_event("GET", "/v1/referrals", None, bad)
    event["requestContext"]["identity"]["sourceIp"] = "198.51.100.20"
    assert handler(event, LambdaContext())["statusCode"] == 401
