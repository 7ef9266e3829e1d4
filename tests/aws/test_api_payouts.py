"""POST /v1/payouts on AWS, through API Gateway: it starts the payout state machine
(moto's) and answers 202, rather than run the payout within API Gateway's 29 s."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from referrals.adapters.clock import SystemClock
from referrals.aws import payout
from referrals.aws.api import handler
from referrals.aws.runtime import services
from referrals.config import Settings
from referrals.domain.model import ReferralStatus, Role
from referrals.services.keys import create_key
from tests.aws.conftest import Aws, LambdaContext, PayoutMachine, rest_event

OCTOBER = "2026-10"


def admin(aws: Aws) -> dict[str, str]:
    plaintext, _ = create_key(aws.store, SystemClock(), Role.ADMIN)
    return {"Authorization": f"Bearer {plaintext}"}


def call(method: str, path: str, headers: dict[str, str], body: object = None) -> dict[str, Any]:
    response: dict[str, Any] = handler(rest_event(method, path, body, headers), LambdaContext())
    return response


def with_october_rewards(aws: Aws) -> dict[str, str]:
    headers = admin(aws)
    call("POST", "/v1/referrers", headers, {"user_id": "alice", "code": "ALICE"})
    for n in range(3):
        body = {"user_id": f"u{n}", "referral_code": "alice", "signed_up_at": "2026-10-05T12:00Z"}
        assert call("POST", "/v1/signups", headers, body)["statusCode"] == 201
    return headers


def location(response: dict[str, Any]) -> list[str]:
    headers = {**response.get("headers", {}), **response.get("multiValueHeaders", {})}
    found = [v for k, v in headers.items() if k.lower() == "location"]
    return [v for value in found for v in (value if isinstance(value, list) else [value])]


def test_a_payout_is_started_on_the_state_machine_and_answered_202(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = with_october_rewards(aws)
    response = call("POST", "/v1/payouts", headers, {"period": OCTOBER})
    assert response["statusCode"] == 202
    assert location(response) == [f"/v1/payouts/{OCTOBER}"]
    (execution,) = payout_machine.executions()
    assert json.loads(response["body"]) == {
        "period": OCTOBER,
        "status": "started",
        "url": f"/v1/payouts/{OCTOBER}",
        "execution_arn": execution["executionArn"],
    }
    assert execution["name"] == f"payout-{OCTOBER}" and execution["status"] == "RUNNING"
    # What the state machine's first step takes: the month to pay.
    assert json.loads(execution["input"]) == {"period": OCTOBER}
    # Nothing was paid within the request: the run is the execution's to make.
    assert call("GET", f"/v1/payouts/{OCTOBER}", headers)["statusCode"] == 404
    with aws.store.read() as uow:
        assert uow.payouts.get(OCTOBER) is None
        assert uow.referrals.by_referee("u0").status is ReferralStatus.PENDING  # type: ignore[union-attr]
        (entry, *_) = uow.audit.list(None, 10)
    assert (entry.action, entry.target) == ("payout.start", f"payout:{OCTOBER}")


def test_a_second_post_does_not_start_a_second_execution(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = with_october_rewards(aws)
    first = call("POST", "/v1/payouts", headers, {"period": OCTOBER})
    again = call("POST", "/v1/payouts", headers, {"period": OCTOBER})
    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    assert json.loads(again["body"]) == json.loads(first["body"])
    assert len(payout_machine.executions()) == 1


def test_a_completed_period_answers_200_with_the_stored_run_and_starts_nothing(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = with_october_rewards(aws)
    started = json.loads(call("POST", "/v1/payouts", headers, {"period": OCTOBER})["body"])
    (execution,) = payout_machine.executions()
    # The state machine's loop, with the execution's own input (tests/infra's e2e runs
    # the synthesized definition; here one step is enough: three rewards).
    state = payout.handler(json.loads(execution["input"]), LambdaContext())
    assert state["done"] is True
    response = call("POST", "/v1/payouts", headers, {"period": started["period"]})
    assert response["statusCode"] == 200
    run = json.loads(response["body"])
    assert (run["status"], run["referral_count"], run["total_cents"]) == ("completed", 3, 3000)
    assert run == json.loads(call("GET", f"/v1/payouts/{OCTOBER}", headers)["body"])
    assert len(payout_machine.executions()) == 1


def test_the_location_keeps_the_stage_under_api_gateways_default_url(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    host = {"Host": "a1b2c3d4e5.execute-api.us-east-2.amazonaws.com"}
    response = call("POST", "/v1/payouts", {**admin(aws), **host}, {"period": OCTOBER})
    assert response["statusCode"] == 202
    assert location(response) == [f"/prod/v1/payouts/{OCTOBER}"]
    assert json.loads(response["body"])["url"] == f"/prod/v1/payouts/{OCTOBER}"


def test_a_period_not_ended_is_400_and_starts_nothing(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = admin(aws)
    for period in ("2999-01", "2026-13", "october"):
        response = call("POST", "/v1/payouts", headers, {"period": period})
        assert response["statusCode"] == 400, period
        assert json.loads(response["body"])["code"] == "validation_error"
    assert payout_machine.executions() == []


def test_a_dry_run_is_answered_at_once_and_starts_nothing(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = with_october_rewards(aws)
    response = call("POST", "/v1/payouts", headers, {"period": OCTOBER, "dry_run": True})
    assert response["statusCode"] == 200
    preview = json.loads(response["body"])
    assert (preview["referral_count"], preview["total_cents"], preview["run_status"]) == (
        3,
        3000,
        None,
    )
    assert payout_machine.executions() == []


def test_an_ingest_key_may_not_start_a_payout(aws: Aws, payout_machine: PayoutMachine) -> None:
    plaintext, _ = create_key(aws.store, SystemClock(), Role.INGEST)
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert call("POST", "/v1/payouts", headers, {"period": OCTOBER})["statusCode"] == 403
    assert payout_machine.executions() == []


def test_the_api_function_starts_runs_only_when_told_the_state_machine(
    payout_machine: PayoutMachine,
) -> None:
    from referrals.adapters.stepfunctions import StepFunctionsPayoutStarter
    from referrals.bootstrap import build_payout_starter

    starter = build_payout_starter(payout_machine.arn)
    assert isinstance(starter, StepFunctionsPayoutStarter)
    assert starter.state_machine_arn == payout_machine.arn
    assert build_payout_starter("") is None  # the request runs the payout itself


@pytest.mark.parametrize(
    "value",
    [
        "referrals-prod-payout",
        "arn:aws:sns:us-east-2:123456789012:referrals-prod-payout",
        "arn:aws:states:us-east-2:123456789012:execution:referrals-prod-payout:x",
        "arn:aws:states::123456789012:stateMachine:referrals-prod-payout",
    ],
)
def test_a_setting_that_is_not_a_state_machine_arn_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="payout_state_machine_arn"):
        Settings(payout_state_machine_arn=value)


def test_a_state_machine_that_cannot_start_is_a_503_and_starts_nothing(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    headers = with_october_rewards(aws)
    payout_machine.client.delete_state_machine(stateMachineArn=payout_machine.arn)
    response = call("POST", "/v1/payouts", headers, {"period": OCTOBER})
    assert response["statusCode"] == 503  # the request was fine: a retry may succeed
    assert json.loads(response["body"])["code"] == "unavailable"
    with aws.store.read() as uow:
        assert uow.payouts.get(OCTOBER) is None


def test_a_signup_makes_no_client_for_reports_notifications_or_runs(
    aws: Aws, payout_machine: PayoutMachine
) -> None:
    # A cold start that answers a signup does not pay for the S3, SNS and Step Functions
    # models it does not call (bootstrap.LazyClient); starting a run makes its client.
    headers = with_october_rewards(aws)
    svc = services()
    clients = {"s3": svc.reports.client, "sns": svc.notifier.client}  # type: ignore[attr-defined]
    clients["stepfunctions"] = svc.payout_starter.client  # type: ignore[union-attr]
    assert {name: client.loaded for name, client in clients.items()} == dict.fromkeys(
        clients, False
    )
    assert call("POST", "/v1/payouts", headers, {"period": OCTOBER})["statusCode"] == 202
    assert clients["stepfunctions"].loaded and len(payout_machine.executions()) == 1
    assert not clients["s3"].loaded and not clients["sns"].loaded
