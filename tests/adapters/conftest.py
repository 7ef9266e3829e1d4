"""Fixtures shared by the adapter tests."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals.domain.events import referral_created
from referrals.domain.model import Event, Referral, ReferralStatus
from tests.clocks import FixedClock

AWS_REGION = "us-east-2"


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, no profile, no config files, no endpoint override.

    Even if a test forgot `mock_aws`, boto3 could not sign a request to real AWS
    with real credentials from this machine.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_SNS",
        "AWS_ENDPOINT_URL_SQS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="session")
def aws_session() -> boto3.Session:
    """One boto3 session for the run, with explicit fake keys.

    Clients made from it are cheap (the service models are loaded once), while each
    test still gets fresh moto state from its own `mock_aws()`. The keys are fake
    whatever the environment holds.
    """
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=AWS_REGION,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def referral(clock: FixedClock) -> Referral:
    # The referee's email is set on purpose: it must never leave in a notification.
    return Referral(
        id="01JREFERRAL00000000000000A",
        referee_id="referee-42",
        referrer_id="referrer-7",
        code="K7M2Q9XZ",
        email="alice.referee@example.com",
        ordinal=3,
        reward_cents=1500,
        status=ReferralStatus.PENDING,
        created_at=datetime(2026, 3, 14, 11, 59, tzinfo=UTC),
    )


@pytest.fixture
def event(referral: Referral, clock: FixedClock) -> Event:
    return referral_created(referral, clock.now())


@pytest.fixture
def dynamodb_client() -> Iterator[Any]:
    """A DynamoDB client on moto, with this test's own fresh state."""
    with mock_aws():
        yield boto3.client("dynamodb", region_name=AWS_REGION)
