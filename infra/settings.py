"""The deployment's parameters, read from CDK context (`-c stage=... -c region=...`).

The referral program's settings come from context too (`-c hold_days=14`), by
their names in `referrals.config.Settings`, and reach the functions as the
REFERRALS_* variables the service reads.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Node
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from referrals.adapters.dynamodb.tables import main_table
from referrals.config import Settings

DEFAULT_STAGE = "prod"
DEFAULT_REGION = "us-east-2"
# Lower case for bucket names; short enough that
# `referrals-<stage>-reports-<account>-<region>` stays within S3's 63 characters.
_STAGE = re.compile(r"^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# The program settings a deployment chooses; the stack sets the others (storage,
# reports, notifications, secret) from the resources it creates.
PROGRAM_SETTINGS = (
    "tiers",
    "hold_days",
    "monthly_cap_cents",
    "lifetime_cap_cents",
    "share_url",
    "reward_trigger",
    "conversion_event",
    "conversion_min_cents",
    "minimum_payout_cents",
    "referee_reward_cents",
    "auto_enroll",
    "check_email_alias",
    "check_disposable_email",
    "check_same_device",
    "velocity_per_hour",
    "stripe_program",
)
# An existing secret's complete ARN (its name ends in six random characters).
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$"
)


class ContextError(ValueError):
    """A context value the stack cannot be built with; the message names it."""


class _ContextSettings(Settings):
    """The service's settings from the given values alone: the deploying machine's
    own REFERRALS_* environment is not the functions' and must not pass or fail a synth."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def program_environment(values: Mapping[str, Any]) -> dict[str, str]:
    """The functions' REFERRALS_* variables for the program settings in `values`.

    Validated by the service's own Settings, so a value every function would refuse
    at its cold start fails the synth instead, naming the setting.
    """
    try:
        validated = _ContextSettings(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"-c {e['loc'][0]}={values[str(e['loc'][0])]}: {e['msg']}" for e in error.errors()
        )
        raise ContextError(f"program setting {problems}") from None

    def variable(value: object) -> str:
        # As the Settings parse it back; str(True) would be "True".
        return str(value).lower() if isinstance(value, bool) else str(value)

    return {f"REFERRALS_{name.upper()}": variable(getattr(validated, name)) for name in values}


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
    # REFERRALS_* variables of the program settings chosen by context (validated).
    program_environment: Mapping[str, str] = field(default_factory=dict)
    # The Secrets Manager secret holding the Stripe webhook's signing secret (empty: the
    # webhook is off); the API function gets its ARN and may read it.
    stripe_webhook_secret_arn: str = ""
    # A main table deployed before the indexes were narrowed migrates one index per
    # deployment (DynamoDB builds or drops one at a time): retired indexes it keeps for
    # now, and new ones it does not build yet (infra/README.md, "Upgrading the tables").
    keep_indexes: tuple[str, ...] = ()
    defer_indexes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _STAGE.match(self.stage):
            raise ContextError(
                f"stage {self.stage!r}: 1-16 characters of a-z, 0-9 and '-', starting with a letter"
            )
        if not _REGION.match(self.region):
            raise ContextError(f"region {self.region!r} is not an AWS region name")
        try:
            main_table(self.prefix, keep=self.keep_indexes, defer=self.defer_indexes)
        except ValueError as error:
            raise ContextError(f"keep_indexes / defer_indexes: {error}") from None
        if self.stripe_webhook_secret_arn and not _SECRET_ARN.match(self.stripe_webhook_secret_arn):
            raise ContextError(
                f"stripe_webhook_secret_arn {self.stripe_webhook_secret_arn!r}: the complete "
                "ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:"
                "secret:NAME-XXXXXX)"
            )

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
        given = {name: node.try_get_context(name) for name in PROGRAM_SETTINGS}
        program = program_environment({k: v for k, v in given.items() if v is not None})
        stripe = str(node.try_get_context("stripe_webhook_secret_arn") or "")
        return cls(
            stage=str(stage),
            region=str(region),
            program_environment=program,
            stripe_webhook_secret_arn=stripe,
            keep_indexes=_names(node.try_get_context("keep_indexes")),
            defer_indexes=_names(node.try_get_context("defer_indexes")),
        )


def _names(value: object) -> tuple[str, ...]:
    """Index names from context: `-c keep_indexes=a,b`, or a list in cdk.json."""
    if isinstance(value, str):
        names: list[str] = value.split(",")
    elif isinstance(value, list | tuple):
        names = [str(v) for v in value]
    else:
        names = []
    return tuple(name.strip() for name in names if name.strip())
