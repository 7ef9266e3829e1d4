"""SnapStart's runtime hooks, run as Lambda runs them: before the snapshot in the reverse
order of registration, after a restore in order (snapshot_restore_py's registries)."""

import random
import sys
from typing import Any

import boto3
import pytest
from snapshot_restore_py import get_after_restore, get_before_snapshot

from referrals.aws import api, notify, payout, runtime
from referrals.aws.runtime import services
from tests.aws.conftest import REGION, Aws, LambdaContext, rest_event


def snapshot() -> None:
    for hook, args, kwargs in reversed(get_before_snapshot()):
        hook(*args, **kwargs)


def restore() -> None:
    for hook, args, kwargs in get_after_restore():
        hook(*args, **kwargs)


def hooks(registry: list[Any]) -> list[Any]:
    return [hook for hook, _, _ in registry]


def test_importing_the_handlers_registers_their_hooks() -> None:
    assert (notify.handler, payout.handler) != (None, None)  # imported, as Lambda does
    before, after = hooks(get_before_snapshot()), hooks(get_after_restore())
    assert {runtime.prime, api.prime} <= set(before)
    assert {runtime.restored, api.restored} <= set(after)
    # Services are cleared before the app that holds them.
    assert after.index(runtime.restored) < after.index(api.restored)


def test_priming_builds_nothing_and_calls_no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any AWS call would go to a closed port and fail the snapshot: priming makes none.
    for name, value in {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "REFERRALS_DATABASE_URL": "dynamodb://referrals-test",
        "REFERRALS_REPORTS_URL": "s3://referrals-test-reports/",
        "REFERRALS_NOTIFY_URL": f"arn:aws:sns:{REGION}:123456789012:referrals-test-events",
        "REFERRALS_SECRET_KEY_ARN": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:s-AbC",
        "REFERRALS_PAYOUT_STATE_MACHINE_ARN": (
            f"arn:aws:states:{REGION}:123456789012:stateMachine:referrals-test-payout"
        ),
    }.items():
        monkeypatch.setenv(name, value)
    services.cache_clear()
    api._adapter = None
    snapshot()
    # No secret, client or connection in the snapshot: each instance makes its own.
    assert services.cache_info().currsize == 0
    assert api._adapter is None
    assert "referrals.api.app" in sys.modules


def test_a_restored_instance_reads_the_signing_secret_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name="referrals-test-signing", SecretString="a" * 40)["ARN"]
    monkeypatch.setenv("REFERRALS_SECRET_KEY_ARN", arn)
    assert api.handler(rest_event("GET", "/healthz"), LambdaContext())["statusCode"] == 200
    first = services()
    client.put_secret_value(SecretId=arn, SecretString="b" * 40)  # rotated after a leak
    restore()
    assert api._adapter is None
    assert api.handler(rest_event("GET", "/healthz"), LambdaContext())["statusCode"] == 200
    # New services: the new secret, new clients (and so no connection from before).
    assert services() is not first
    assert services().settings.secret_key == "b" * 40
    assert services().store is not first.store


def draws(hooked: bool) -> list[float]:
    """One draw by each of two instances resumed from one snapshot: both start from the
    random state the snapshot holds (a snapshot copies memory; no fork hook runs)."""
    held = random.getstate()
    drawn = []
    for _ in range(2):
        random.setstate(held)
        if hooked:
            restore()
        drawn.append(random.random())
    return drawn


def test_restored_instances_draw_their_own_random_numbers() -> None:
    first, second = draws(hooked=True)
    assert first != second


def test_without_the_restore_hook_instances_would_draw_the_same() -> None:
    # What the hook is for: retry jitter would be the same in every instance.
    first, second = draws(hooked=False)
    assert first == second
