"""What a Lambda instance builds once and reuses across invocations, and what a
SnapStart snapshot of it may hold.

Nothing is built at import: `services()` is built by the first invocation.

The functions run with SnapStart (infra/functions.py): Lambda initializes a
published version once, snapshots the process, and resumes every new instance
of that version from the snapshot. Before the snapshot each handler primes
(`prime`): it imports what its first invocation would import, and makes each
AWS client once, discarded, so the snapshot holds the modules and botocore's
parsed service models, which every instance may share. It builds no Services
and makes no AWS call: the signing secret, the clients and their connections
are made after the restore, by each instance for itself. (The credentials those
first clients resolve are Lambda's container credentials under SnapStart, which
botocore renews when they expire, after a restore too.) After a restore
(`restored`), `random` is reseeded (retry jitter drawn from one shared state
would be the same in every instance), and anything built before the snapshot
is dropped.
"""

import random
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import SecretStr
from snapshot_restore_py import (  # type: ignore[import-untyped]
    register_after_restore,
    register_before_snapshot,
)

from referrals.bootstrap import Services, build
from referrals.config import Settings


class SecretKeyUnavailable(RuntimeError):
    """The signing secret named by `secret_key_arn` could not be read."""


@cache
def services() -> Services:
    """Adapters from the environment, built on the first invocation, never at import."""
    return build(with_stripe_webhook_secret(with_secret_key(Settings())))


def with_secret_key(settings: Settings) -> Settings:
    """`settings` with `secret_key` read from Secrets Manager, if only its ARN is set.

    Every instance then signs portal links and sessions, and keys fingerprints, with
    the same key, so a link one instance issued opens on any other. A secret that
    cannot be read fails the cold start: falling back to the secret kept in the table
    (what `build` does with no secret configured) would silently change every key,
    ending links and sessions and unmatching fingerprints, a failure hard to trace back.
    """
    arn = settings.secret_key_arn
    if settings.secret_key or not arn:
        return settings
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _client("secretsmanager", _region_of(arn))
        value = client.get_secret_value(SecretId=arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise SecretKeyUnavailable(
            f"cannot read the signing secret {arn} (REFERRALS_SECRET_KEY_ARN): {error}"
        ) from error
    if not isinstance(value, str) or not value:
        raise SecretKeyUnavailable(f"the signing secret {arn} has no string value")
    return settings.model_copy(update={"secret_key": value})


class StripeSecretUnavailable(RuntimeError):
    """The Stripe webhook's signing secret named by `stripe_webhook_secret_arn` could not
    be read."""


def with_stripe_webhook_secret(settings: Settings) -> Settings:
    """`settings` with `stripe_webhook_secret` read from Secrets Manager, if only its ARN
    is set (the stack never puts the value in the template). One that cannot be read
    fails the cold start, as the signing secret does: an API that took Stripe's events
    without it would refuse every one of them, quietly."""
    arn = settings.stripe_webhook_secret_arn
    if settings.stripe_webhook_secret.get_secret_value() or not arn:
        return settings
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = _client("secretsmanager", _region_of(arn))
        value = client.get_secret_value(SecretId=arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise StripeSecretUnavailable(
            f"cannot read the Stripe webhook secret {arn} "
            f"(REFERRALS_STRIPE_WEBHOOK_SECRET_ARN): {error}"
        ) from error
    if not isinstance(value, str) or not value.strip():
        raise StripeSecretUnavailable(f"the Stripe webhook secret {arn} has no string value")
    return settings.model_copy(update={"stripe_webhook_secret": SecretStr(value.strip())})


def _region_of(arn: str) -> str | None:
    # An ARN names its region; a bare secret name is looked up in the function's own.
    return arn.split(":")[3] if arn.startswith("arn:") and arn.count(":") >= 6 else None


def _client(service: str, region: str | None = None) -> Any:
    import boto3

    return boto3.client(service, region_name=region) if region else boto3.client(service)


def prime() -> None:
    """Import and load, before the snapshot, what building `services()` will need.

    The adapters are built and dropped: building them makes their clients, which
    loads botocore's models into its default session, and opens no connection.
    """
    from referrals.bootstrap import (
        LazyClient,
        build_notifier,
        build_payout_starter,
        build_reports,
        build_store,
    )

    settings = Settings()
    build_store(settings.database_url, settings.pool_size)
    adapters = (
        build_reports(settings.reports_url),
        build_notifier(settings),
        build_payout_starter(settings.payout_state_machine_arn),  # the API function's only
    )
    for adapter in adapters:  # their clients are made by their first call: make them now
        client = getattr(adapter, "client", None)
        if isinstance(client, LazyClient):
            client.load()
    if settings.secret_key_arn:
        _client("secretsmanager", _region_of(settings.secret_key_arn))
    if settings.stripe_webhook_secret_arn:
        _client("secretsmanager", _region_of(settings.stripe_webhook_secret_arn))


def restored() -> None:
    """After a restore: this instance's own random state, and nothing built before."""
    random.seed()
    services.cache_clear()


def on_snapshot(before: Callable[[], None], after: Callable[[], None]) -> None:
    """Register SnapStart hooks: `before` the snapshot, `after` a restore. Lambda runs
    them only with SnapStart on, and only those registered by the handler's import."""
    register_before_snapshot(before)
    register_after_restore(after)


on_snapshot(prime, restored)
