"""The Stripe webhook's signing secret on AWS: an existing Secrets Manager secret named by
context (`-c stripe_webhook_secret_arn=...`), which only the API function may read and
gets by ARN, never by value; without it the webhook is off and nothing is granted."""

from typing import Any

import pytest

from infra.settings import ContextError, StageSettings
from tests.infra.conftest import PREFIX, as_list, find, resources

ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:stripe-webhook-AbC123"


def synth(**context: Any) -> dict[str, Any]:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import build
    from tests.infra.conftest import cdk_context

    return dict(Template.from_stack(build(App(context=cdk_context(**context)))).to_json())


def variables(template: dict[str, Any], short: str) -> dict[str, str]:
    _, function = find(template, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    found: dict[str, str] = function["Properties"]["Environment"]["Variables"]
    return found


def readers(template: dict[str, Any], resource: str) -> list[Any]:
    """The roles whose policies allow reading `resource`."""
    return [
        policy["Properties"]["Roles"]
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if resource in as_list(statement["Resource"])
        and "secretsmanager:GetSecretValue" in as_list(statement["Action"])
    ]


def test_the_api_function_gets_the_stripe_secret_by_arn_and_alone_may_read_it() -> None:
    template = synth(stripe_webhook_secret_arn=ARN, stripe_program="saas")
    assert variables(template, "api")["REFERRALS_STRIPE_WEBHOOK_SECRET_ARN"] == ARN
    assert "REFERRALS_STRIPE_WEBHOOK_SECRET" not in variables(template, "api")
    for short in ("payout", "notify"):
        assert "REFERRALS_STRIPE_WEBHOOK_SECRET_ARN" not in variables(template, short)
        assert variables(template, short)["REFERRALS_STRIPE_PROGRAM"] == "saas"
    (roles,) = readers(template, ARN)
    _, api = find(template, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-api")
    assert roles == [{"Ref": api["Properties"]["Role"]["Fn::GetAtt"][0]}]


def test_without_it_the_webhook_is_off_and_nothing_is_granted() -> None:
    template = synth()
    assert "REFERRALS_STRIPE_WEBHOOK_SECRET_ARN" not in variables(template, "api")
    assert readers(template, ARN) == []


@pytest.mark.parametrize(
    "value",
    ["whsec_the0secret0itself", "arn:aws:secretsmanager:us-east-2:123456789012:secret:stripe"],
)
def test_a_value_that_is_not_a_secret_arn_is_refused(value: str) -> None:
    from aws_cdk import App

    with pytest.raises(ContextError, match="stripe_webhook_secret_arn"):
        StageSettings.from_context(App(context={"stripe_webhook_secret_arn": value}).node)
