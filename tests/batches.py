"""Waiting, in a test, for requests to queue in a Batches (services/batching.py)."""

import time
from collections.abc import Hashable
from typing import Any

from referrals.services.batching import Batches


def wait_until_queued(batches: Batches[Any, Any], key: Hashable, count: int) -> None:
    """Until a batch of `key` runs (so that its next requests wait) and `count` wait."""
    deadline = time.monotonic() + 10
    while (waiting := batches._waiting.get(key)) is None or len(waiting) < count:
        assert time.monotonic() < deadline, "the requests never queued"
        time.sleep(0.001)
