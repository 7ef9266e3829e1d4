"""The signing secret on Lambda: read from Secrets Manager once per instance, shared by all."""

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from referrals import derived_keys
from referrals.adapters.clock import SystemClock
from referrals.aws import api
from referrals.aws.runtime import SecretKeyUnavailable, StripeSecretUnavailable, services
from referrals.domain.model import Role
from referrals.services.kept_secret import SECRET_KEY
from referrals.services.keys import create_key
from tests.aws.conftest import ACCOUNT, REGION, Aws, LambdaContext, rest_event

SECRET_VALUE = "test-only-signing-secret-of-at-least-32-characters"


def new_instance() -> None:
    """Forget what this process built, as a new Lambda instance starts with nothing."""
    services.cache_clear()
    api._adapter = None
    derived_keys._process_secret.cache_clear()


def secret_arn(monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret like the stack's, its ARN given to the function as the stack does."""
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = str(
        client.create_secret(Name="referrals-test-signing-secret", SecretString=SECRET_VALUE)["ARN"]
    )
    monkeypatch.setenv("REFERRALS_SECRET_KEY_ARN", arn)
    return arn


def issue_link(aws: Aws) -> str:
    plaintext, _ = create_key(aws.store, SystemClock(), Role.ADMIN)
    headers = {"Authorization": f"Bearer {plaintext}"}
    enrolled = handler(
        rest_event("POST", "/v1/referrers", {"user_id": "alice", "code": "ALICE"}, headers)
    )
    assert enrolled["statusCode"] == 201
    issued = handler(rest_event("POST", "/v1/referrers/alice/portal-link", {}, headers))
    assert issued["statusCode"] == 201
    return str(json.loads(issued["body"])["url"])


def open_link(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    event = rest_event("GET", parts.path)
    event["queryStringParameters"] = {name: values[-1] for name, values in query.items()}
    event["multiValueQueryStringParameters"] = query
    return handler(event)


def handler(event: dict[str, Any]) -> dict[str, Any]:
    return api.handler(event, LambdaContext())


def test_instances_sharing_the_secret_accept_each_others_links(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_arn(monkeypatch)
    url = issue_link(aws)
    new_instance()
    opened = open_link(url)
    assert opened["statusCode"] == 200
    assert "ALICE" in opened["body"]


def test_without_a_configured_secret_instances_share_the_one_kept_in_the_table(
    aws: Aws,
) -> None:
    # Not a key of each instance's own (a link opening only where it was issued):
    # the first instance keeps a secret in the main table, every other reads it.
    url = issue_link(aws)
    new_instance()
    opened = open_link(url)
    assert opened["statusCode"] == 200
    with aws.store.read() as uow:
        kept = uow.secrets.get(SECRET_KEY)
    assert kept is not None and services().settings.secret_key == kept


def test_a_configured_secret_keeps_nothing_in_the_table(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_arn(monkeypatch)
    assert open_link(issue_link(aws))["statusCode"] == 200
    with aws.store.read() as uow:
        assert uow.secrets.get(SECRET_KEY) is None


def test_the_secret_is_the_settings_secret_key(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = secret_arn(monkeypatch)
    settings = services().settings
    assert (settings.secret_key, settings.secret_key_arn) == (SECRET_VALUE, arn)


def test_the_secret_is_read_once_per_instance(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = secret_arn(monkeypatch)
    url = issue_link(aws)
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=arn, ForceDeleteWithoutRecovery=True
    )
    assert open_link(url)["statusCode"] == 200


def test_a_set_secret_key_is_used_without_reading_the_secret(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "set-directly-0123456789abcdef0123456")
    monkeypatch.setenv(
        "REFERRALS_SECRET_KEY_ARN",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:referrals-test-none-AbCdEf",
    )
    assert services().settings.secret_key == "set-directly-0123456789abcdef0123456"


def test_a_missing_secret_fails_the_cold_start(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:referrals-test-none-AbCdEf"
    monkeypatch.setenv("REFERRALS_SECRET_KEY_ARN", arn)
    with pytest.raises(
        SecretKeyUnavailable, match=re.escape(f"cannot read the signing secret {arn} ")
    ):
        handler(rest_event("GET", "/healthz"))
    # Not cached as a success: the next invocation tries again, and fails again.
    with pytest.raises(SecretKeyUnavailable):
        handler(rest_event("GET", "/healthz"))


def test_an_empty_secret_fails_the_cold_start(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name="referrals-test-binary", SecretBinary=b"\x00\x01")["ARN"]
    monkeypatch.setenv("REFERRALS_SECRET_KEY_ARN", arn)
    with pytest.raises(SecretKeyUnavailable, match="has no string value"):
        services()


STRIPE_SECRET = "whsec_test0stripe0endpoint0secret"


def test_the_stripe_webhook_secret_is_read_from_its_secret(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name="referrals-test-stripe", SecretString=STRIPE_SECRET)["ARN"]
    monkeypatch.setenv("REFERRALS_STRIPE_WEBHOOK_SECRET_ARN", arn)
    assert services().settings.stripe_webhook_secret.get_secret_value() == STRIPE_SECRET


def test_an_unreadable_stripe_webhook_secret_fails_the_cold_start(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:referrals-test-stripe-AbCdEf"
    monkeypatch.setenv("REFERRALS_STRIPE_WEBHOOK_SECRET_ARN", arn)
    with pytest.raises(StripeSecretUnavailable, match="REFERRALS_STRIPE_WEBHOOK_SECRET_ARN"):
        services()
