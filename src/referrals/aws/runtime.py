"""What a Lambda container builds once and reuses across invocations."""

from functools import cache

from referrals.bootstrap import Services, build


@cache
def services() -> Services:
    """Adapters from the environment, built on the first invocation, never at import."""
    return build()
