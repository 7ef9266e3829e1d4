"""Builds the adapters from settings: the only place that chooses them."""

import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from referrals.adapters.clock import SystemClock
from referrals.config import Settings
from referrals.derived_keys import FINGERPRINT, secret_for
from referrals.domain.checks import CheckMode, Fingerprints, FraudChecks
from referrals.domain.program import RuleVersion, Trigger
from referrals.domain.tiers import TierSchedule
from referrals.ports import Clock, HealthProbe, Notifier, PayoutStarter, ReportStore, Store
from referrals.services.kept_secret import kept_secret
from referrals.services.outbox import RetryPolicy
from referrals.services.programs import RulesBook


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    clock: Clock
    # The programs and rule versions requests are priced with (services.programs).
    rules: RulesBook
    reports: ReportStore
    notifier: Notifier
    retry_policy: RetryPolicy
    # What enroll and sign_up keep of an IP address or device id (keyed by the secret).
    fingerprints: Fingerprints
    # How many requests a server process lets run their blocking work at once: as many
    # as the store can serve (a PostgreSQL pool's connections; a request holds one for
    # its unit of work, and threads beyond them would only wait in the pool, taking the
    # interpreter lock from those working, while an overflowing pool opens and closes
    # connections; BENCHMARKS.md). None: the thread pool's default (40).
    request_threads: int | None = None
    # Where POST /v1/payouts starts a run and answers at once (AWS: the state machine);
    # None: the request runs it to completion.
    payout_starter: PayoutStarter | None = None
    # /healthz's check on the event loop (PostgreSQL); None: `store.check` in a thread.
    health_probe: HealthProbe | None = None


def build(
    settings: Settings | None = None, *, migrate: bool = False, create_tables: bool = False
) -> Services:
    settings = settings or Settings()
    store = build_store(
        settings.database_url, settings.pool_size, migrate=migrate, create_tables=create_tables
    )
    clock = SystemClock()
    settings = with_secret(settings, store, clock)
    rules = RulesBook(store, clock, seed_rules(settings), settings.share_url)
    if migrate or create_tables:  # the database is being set up: the default program too
        rules.ensure_default()
    return Services(
        settings=settings,
        store=store,
        clock=clock,
        rules=rules,
        reports=build_reports(settings.reports_url),
        notifier=build_notifier(settings),
        retry_policy=RetryPolicy(max_attempts=settings.notify_max_attempts),
        fingerprints=Fingerprints(secret_for(settings, FINGERPRINT)),
        request_threads=store.concurrency_limit,
        payout_starter=build_payout_starter(settings.payout_state_machine_arn),
        health_probe=build_health_probe(settings.database_url),
    )


def build_health_probe(url: str) -> HealthProbe | None:
    """PostgreSQL's probe on the event loop (adapters.sql.probe: under full load a
    request thread can wait seconds for the GIL). SQLite's check is a file read, and a
    Lambda function's serves one request at a time: both keep `store.check`."""
    if not url.startswith("postgresql"):
        return None
    from referrals.adapters.sql.probe import PostgresProbe

    return PostgresProbe(url)


def with_secret(settings: Settings, store: Store, clock: Clock) -> Settings:
    """`settings` with the secret everything keyed derives from (`derived_keys`): the
    configured `secret_key`, which always wins, or else the one kept in `store`
    (`services.kept_secret`), created by the first process to need it and read by
    every other, so links, sessions and fingerprints outlive restarts and agree
    across servers. Read once here, at build."""
    if settings.secret_key:
        return settings
    return settings.model_copy(update={"secret_key": kept_secret(store, clock)})


def seed_rules(settings: Settings) -> RuleVersion:
    """The default program's first rule version, from the settings (used once: when the
    database has no default program yet)."""
    return RuleVersion(
        tiers=TierSchedule.parse(settings.tiers),
        auto_enroll_referees=settings.auto_enroll,
        hold=timedelta(days=settings.hold_days),
        checks=FraudChecks(
            email_alias=_mode(settings.check_email_alias),
            disposable_email=_mode(settings.check_disposable_email),
            same_device=_mode(settings.check_same_device),
            velocity_per_hour=settings.velocity_per_hour,
        ),
        referee_reward_cents=settings.referee_reward_cents,
        minimum_payout_cents=settings.minimum_payout_cents,
        trigger=Trigger(settings.reward_trigger),
        conversion_event=settings.conversion_event,
        conversion_min_cents=settings.conversion_min_cents,
        monthly_cap_cents=settings.monthly_cap_cents,
        lifetime_cap_cents=settings.lifetime_cap_cents,
    )


def _mode(on: bool) -> CheckMode:
    return CheckMode.HOLD if on else CheckMode.OFF


def build_store(
    url: str, pool_size: int = 5, *, migrate: bool = False, create_tables: bool = False
) -> Store:
    """The store `url` names. `migrate` brings a SQL schema up to date, creating a
    fresh database's tables. DynamoDB's tables belong to the deployed stack: there
    `migrate` only checks them (DynamoSetupError, one line, if missing or different),
    and `create_tables` (`referrals db upgrade`) creates those that are missing.
    Without either nothing is checked: a Lambda function trusts its own stack."""
    if url.startswith("memory://"):
        from referrals.adapters.memory import MemoryStore

        return MemoryStore()
    if url.startswith("dynamodb://"):
        from botocore.exceptions import NoRegionError

        from referrals.adapters.dynamodb.store import DynamoStore
        from referrals.adapters.dynamodb.tables import DynamoSetupError

        try:
            client = _boto3_client("dynamodb")
        except NoRegionError:
            raise DynamoSetupError(
                "no AWS region for DynamoDB: set AWS_DEFAULT_REGION (or a region in the AWS "
                "profile) to the stack's region"
            ) from None
        store = DynamoStore(client, url.removeprefix("dynamodb://"))
        if create_tables:
            store.create_tables()
        elif migrate:
            store.require_tables()
        return store
    from referrals.adapters.sql.engine import create_engines
    from referrals.adapters.sql.store import SqlStore

    writer, reader = create_engines(url, pool_size)
    if migrate:
        from referrals.adapters.sql.migrate import upgrade

        upgrade(writer)
    return SqlStore(writer, reader)


def build_reports(url: str) -> ReportStore:
    if url.startswith("s3://"):
        from referrals.adapters.reports.s3 import S3ReportStore

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3ReportStore(LazyClient("s3"), bucket, prefix)
    from referrals.adapters.reports.local import LocalReportStore

    return LocalReportStore(Path(url))


def build_notifier(settings: Settings) -> Notifier:
    url = settings.notify_url
    if url.startswith("arn:aws:sns:"):
        from referrals.adapters.notify.sns import SnsNotifier

        return SnsNotifier(LazyClient("sns", region=url.split(":")[3]), url)
    if url.startswith(("https://", "http://")):
        import httpx

        from referrals.adapters.notify.webhook import WebhookNotifier

        # The settings refused a webhook with no secret unless `webhook_unsigned` is set.
        secret = settings.webhook_secret or None
        return WebhookNotifier(url, secret, httpx.Client(timeout=10))
    from referrals.adapters.notify.log import LogNotifier

    return LogNotifier()


def build_payout_starter(state_machine_arn: str) -> PayoutStarter | None:
    if not state_machine_arn:
        return None
    from referrals.adapters.stepfunctions import StepFunctionsPayoutStarter

    # arn:aws:states:REGION:ACCOUNT:stateMachine:NAME
    region = state_machine_arn.split(":")[3]
    return StepFunctionsPayoutStarter(LazyClient("stepfunctions", region), state_machine_arn)


def _boto3_client(service: str, region: str | None = None) -> Any:
    import boto3

    return boto3.client(service, region_name=region) if region else boto3.client(service)


class LazyClient:
    """A boto3 client made by its first call, for the services a process may never call.

    Making a client parses the service's model: about 50 ms for S3 in a Lambda cold
    start (BENCHMARKS.md, issue 26). The API function answers signups without writing a
    report, publishing or starting a run, and the payout function's hourly check does
    neither; neither pays for clients it does not call. DynamoDB's client, which every
    request uses, is made at build.
    """

    def __init__(self, service: str, region: str | None = None) -> None:
        self.service = service
        self.region = region
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._client is not None

    def load(self) -> Any:
        if self._client is None:
            # Two request threads must not make it at once: boto3's default session is
            # not safe to make clients from concurrently.
            with self._lock:
                if self._client is None:
                    self._client = _boto3_client(self.service, self.region)
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.load(), name)
