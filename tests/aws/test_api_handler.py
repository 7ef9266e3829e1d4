import json

from referrals.adapters.clock import SystemClock
from referrals.aws.api import handler
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
