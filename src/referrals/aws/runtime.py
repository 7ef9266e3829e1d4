"""What a Lambda container builds once and reuses across invocations."""

from functools import cache

from referrals.bootstrap import Services, build
from referrals.config import Settings


class SecretKeyUnavailable(RuntimeError):
    """The signing secret named by `secret_key_arn` could not be read."""


@cache
def services() -> Services:
    """Adapters from the environment, built on the first invocation, never at import."""
    return build(with_secret_key(Settings()))


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
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    # An ARN names its region; a bare secret name is looked up in the function's own.
    region = arn.split(":")[3] if arn.startswith("arn:") and arn.count(":") >= 6 else None
    try:
        client = boto3.client("secretsmanager", region_name=region)
        value = client.get_secret_value(SecretId=arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise SecretKeyUnavailable(
            f"cannot read the signing secret {arn} (REFERRALS_SECRET_KEY_ARN): {error}"
        ) from error
    if not isinstance(value, str) or not value:
        raise SecretKeyUnavailable(f"the signing secret {arn} has no string value")
    return settings.model_copy(update={"secret_key": value})
