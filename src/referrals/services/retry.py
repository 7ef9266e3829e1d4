"""Retrying a unit of work that lost a race to a concurrent writer."""

import random
import time
from collections.abc import Callable
from typing import TypeVar

from referrals.domain.errors import Conflict

# Optimistic stores (DynamoDB) may lose several races in a row on a hot referrer.
MAX_ATTEMPTS = 25
T = TypeVar("T")


def retry_on_conflict(attempt: Callable[[], T]) -> T:
    """Run `attempt` again when the store reports a Conflict.

    A Conflict means another transaction committed the row we meant to create
    (the same referee, user or code). The retry reads that committed state and
    then replays, refuses or picks a new code, so no race leaks to the client.
    """
    for n in range(MAX_ATTEMPTS - 1):
        try:
            return attempt()
        except Conflict:
            # Full jitter, capped: spreads the contenders out without long stalls.
            time.sleep(random.uniform(0, min(0.05, 0.002 * 2**n)))
    return attempt()
