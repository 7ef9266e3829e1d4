"""The deployment's parameters, read from CDK context (`-c stage=... -c region=...`)."""

import re
from dataclasses import dataclass

from constructs import Node

DEFAULT_STAGE = "prod"
DEFAULT_REGION = "us-east-2"
# Lower case for bucket names; short enough that
# `referrals-<stage>-reports-<account>-<region>` stays within S3's 63 characters.
_STAGE = re.compile(r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True, slots=True)
class StageSettings:
    stage: str = DEFAULT_STAGE
    region: str = DEFAULT_REGION
    log_retention_days: int = 7
    # API Gateway stage throttling (steady requests per second, burst).
    api_rate_limit: int = 100
    api_burst_limit: int = 200
    # Reserved concurrency also caps each function's share of the account's pool.
    api_concurrency: int = 50
    # One payout run at a time; a second start waits on the lease anyway.
    payout_concurrency: int = 1
    notify_concurrency: int = 5
    # API Gateway gives up on an integration after 29 s.
    api_timeout_seconds: int = 28
    # A payout invocation works in slices and hands over to the next one.
    payout_timeout_seconds: int = 300
    notify_timeout_seconds: int = 60

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ValueError(
                f"stage {self.stage!r}: 1-16 characters of a-z, 0-9 and '-', starting with a letter"
            )
        if not _REGION.match(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS region name")

    @property
    def prefix(self) -> str:
        """Every resource name starts with it; it is also the DynamoDB table prefix."""
        return f"referrals-{self.stage}"

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @classmethod
    def from_context(cls, node: Node) -> "StageSettings":
        stage = node.try_get_context("stage") or DEFAULT_STAGE
        region = node.try_get_context("region") or DEFAULT_REGION
        return cls(stage=str(stage), region=str(region))
