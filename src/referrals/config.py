"""The one settings class. Nothing else reads the environment."""

import base64
import binascii
import ipaddress
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from referrals.domain.errors import InvalidInput
from referrals.domain.program import is_valid_program_id
from referrals.domain.tiers import TierSchedule


class ConfigError(Exception):
    """A setting or a place the service cannot start with. Its message is one line that
    tells the operator what to change; the CLI prints it instead of a traceback."""


WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_KEY_BYTES = 24


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRALS_", extra="ignore")

    database_url: str = "sqlite:///./referrals.db"
    reports_url: str = "./reports"
    # Empty: log only; https://... a signed webhook; arn:aws:sns:... an SNS topic.
    notify_url: str = ""
    # Signs webhook deliveries (Standard Webhooks and Referrals-Signature): a
    # `whsec_<base64>` value or other text, at least 24 bytes of key either way. A
    # webhook without one is refused at start unless `webhook_unsigned` says so.
    webhook_secret: str = ""
    webhook_unsigned: bool = False
    # Plain http:// carries events and signatures in clear text: only to this machine
    # (loopback) unless allowed here.
    webhook_allow_http: bool = False
    notify_max_attempts: int = 8
    # Delivered events are deleted this many days after they were made; pending and
    # dead ones are kept whatever their age.
    outbox_retention_days: int = Field(30, ge=1, le=3650)
    scheduler: bool = True
    # Rewards assigned per payout transaction: bounds memory and each transaction's size.
    payout_batch_size: int = Field(20_000, ge=1, le=100_000)
    tiers: str = "1:1000,5:1500,10:2000,25:2500"
    auto_enroll: bool = True
    # Days after a signup before its reward is payable (refund and dispute window).
    hold_days: int = Field(0, ge=0, le=365)
    # Fraud checks flag a signup for review (its reward is held), never refuse it.
    check_email_alias: bool = True
    check_disposable_email: bool = True
    check_same_device: bool = True
    # Hold rewards past this many referrals within an hour for one referrer; 0: off.
    velocity_per_hour: int = Field(0, ge=0)
    # The referee's own reward in cents (a double-sided program); 0: none.
    referee_reward_cents: int = Field(0, ge=0, le=10_000_000)
    # A user's total in a run below this is carried forward to a later run.
    minimum_payout_cents: int = Field(0, ge=0, le=100_000_000)
    # What earns a referral its reward: the signup, or the referee's qualifying conversion.
    reward_trigger: Literal["signup", "conversion"] = "signup"
    conversion_event: str = Field("purchase", min_length=1, max_length=64)
    conversion_min_cents: int = Field(0, ge=0)
    # The most a referrer earns from referrals in a calendar month (UTC) and in all; 0: no cap.
    monthly_cap_cents: int = Field(0, ge=0, le=10**12)
    lifetime_cap_cents: int = Field(0, ge=0, le=10**12)
    max_body_bytes: int = 64 * 1024
    # PostgreSQL: the connections each server process keeps, and the most it opens. As
    # many requests run at once (their thread limit is this number, api.app), one
    # connection each; the background worker (outbox delivery, the payout schedule) and
    # /readyz take their turn for one. A steady load then opens no connection after
    # warm-up, and N processes need N x (pool_size + 1) of the database's max_connections
    # (/healthz keeps a connection of its own: adapters.sql.probe).
    # SQLite ignores it (one writer connection; readers, with WAL, are not bounded).
    pool_size: int = Field(5, ge=1, le=1000)
    # `serve`'s logs: one JSON object a line for log collectors, or text for a terminal;
    # auto: text when stderr is a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    # Signs dashboard sessions and referrer portal links, and keys IP/device
    # fingerprints. Every process serving one database must share it; empty: the
    # service keeps a secret of its own in the database (bootstrap.with_secret),
    # readable by whoever reads the database: set one in production.
    secret_key: str = ""
    # On AWS: a Secrets Manager secret whose value is the secret_key, read by the Lambda
    # runtime at each cold start when secret_key itself is empty.
    secret_key_arn: str = ""
    # On AWS: the payout state machine. Set, POST /v1/payouts starts an execution of it
    # and answers 202 (a run may take longer than API Gateway waits); empty, it runs
    # the payout to completion within the request.
    payout_state_machine_arn: str = ""
    # Where a referrer's share link points, `{code}` replaced by their code.
    share_url: str = "https://example.com/signup?ref={code}"
    # How long a portal link opens the referrer's page.
    portal_link_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    dashboard_session_seconds: int = Field(8 * 3600, ge=60, le=7 * 24 * 3600)
    # Per client address (api/ratelimits.py), in windows of this many seconds: failed
    # authentications, counted in the database every server shares (past the limit, the
    # address gets 429 until its window ends); and requests to the public routes, counted
    # by each process. 0: no limit.
    rate_limit_window_seconds: int = Field(60, ge=1, le=3600)
    auth_failure_limit: int = Field(20, ge=0)
    public_rate_limit: int = Field(300, ge=0)
    # `serve` writes tracked-link clicks behind the redirect, in batches every 0.1 s
    # (referrals.click_writer); off: each redirect writes its click (as on Lambda).
    click_write_behind: bool = True
    # Stripe's signing secret of the webhook endpoint (whsec_..., on the endpoint's page in
    # Stripe's dashboard): POST /v1/integrations/stripe/webhook verifies each event with
    # it. Empty: the route is off and answers 404.
    stripe_webhook_secret: SecretStr = SecretStr("")
    # On AWS: a Secrets Manager secret whose value is the stripe_webhook_secret, read by
    # the Lambda runtime at each cold start when stripe_webhook_secret itself is empty.
    stripe_webhook_secret_arn: str = ""
    # The program Stripe's sales and refunds go to, unless an object's metadata
    # `referrals_program` names another.
    stripe_program: str = "default"

    @field_validator("database_url")
    @classmethod
    def _known_database_url(cls, value: str) -> str:
        # Heroku-style `postgres://` is not a scheme SQLAlchemy knows; say which is.
        if value.startswith("postgres://"):
            raise ValueError(
                "postgres:// is not a URL scheme SQLAlchemy knows: write postgresql://"
            )
        return value

    @field_validator("notify_url")
    @classmethod
    def _valid_notify_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://", "arn:aws:sns:")):
            raise ValueError("notify_url must be empty, an http(s) URL or an SNS topic ARN")
        return value

    @field_validator("payout_state_machine_arn")
    @classmethod
    def _state_machine_arn(cls, value: str) -> str:
        parts = value.split(":")
        machine = (
            len(parts) == 7
            and parts[0] == "arn"
            and parts[1].startswith("aws")  # aws, aws-cn, aws-us-gov
            and parts[2] == "states"
            and parts[3] != ""
            and parts[5] == "stateMachine"
        )
        if value and not machine:
            raise ValueError(
                "payout_state_machine_arn must be empty or a state machine's ARN"
                " (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _usable_webhook_secret(cls, value: str) -> str:
        if not value:
            return value
        if value.startswith(WEBHOOK_SECRET_PREFIX):
            encoded = value.removeprefix(WEBHOOK_SECRET_PREFIX)
            try:
                key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
            except binascii.Error:
                raise ValueError("a whsec_ secret is base64 after its prefix") from None
        else:
            key = value.encode()
        # The Standard Webhooks minimum: a signed body is a known message and its MAC,
        # from which a short key could be found offline, then deliveries forged.
        if len(key) < WEBHOOK_KEY_BYTES:
            raise ValueError(
                f"webhook_secret must hold at least {WEBHOOK_KEY_BYTES} bytes of key (a whsec_ "
                'value: decoded); make one with `python -c "import base64, secrets; '
                "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"`"
            )
        return value

    @model_validator(mode="after")
    def _signed_webhook(self) -> Self:
        """A webhook is signed, or unsigned by an explicit setting; plain http only to this
        machine unless allowed. Each problem names the variable to change (its `loc`)."""
        problems: list[tuple[str, str]] = []
        url = urlsplit(self.notify_url)
        if url.scheme not in ("http", "https"):
            return self
        if not url.hostname:
            problems.append(("notify_url", "a webhook URL needs a host"))
        elif url.scheme == "http" and not _loopback(url.hostname) and not self.webhook_allow_http:
            problems.append(
                (
                    "notify_url",
                    "http:// to a host other than this machine carries events and their "
                    "signatures in clear text: use https://, or set "
                    "REFERRALS_WEBHOOK_ALLOW_HTTP=true",
                )
            )
        if not self.webhook_secret and not self.webhook_unsigned:
            problems.append(
                (
                    "webhook_secret",
                    "a webhook (REFERRALS_NOTIFY_URL) is sent only signed: set a secret of at "
                    "least 24 bytes (e.g. whsec_ and 32 random bytes in base64), or "
                    "REFERRALS_WEBHOOK_UNSIGNED=true to send it unsigned",
                )
            )
        if self.webhook_secret and self.webhook_unsigned:
            problems.append(
                (
                    "webhook_unsigned",
                    "webhook_unsigned is true, but REFERRALS_WEBHOOK_SECRET is set: unset one",
                )
            )
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", message),
                        loc=(field,),
                        input=None,
                    )
                    for field, message in problems
                ],
            )
        return self

    @field_validator("secret_key")
    @classmethod
    def _long_secret(cls, value: str) -> str:
        # Every referrer holds a portal link (a known message and its HMAC): a short
        # secret could be guessed offline from one, and would forge admin sessions.
        if value and len(value) < 32:
            raise ValueError("secret_key must be at least 32 characters (or empty)")
        return value

    @field_validator("stripe_program")
    @classmethod
    def _stripe_program_slug(cls, value: str) -> str:
        if not is_valid_program_id(value):
            raise ValueError("stripe_program must be a program id (a slug: a-z, 0-9 and -)")
        return value

    @field_validator("tiers")
    @classmethod
    def _valid_tiers(cls, value: str) -> str:
        try:
            TierSchedule.parse(value)
        except InvalidInput as error:
            raise ValueError(error.detail) from None
        return value
