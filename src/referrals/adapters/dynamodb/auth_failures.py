"""Failed authentications per client address in fixed windows (Store.count_failure).

An item per address in the main table (`LIMIT#<address>`, `FAILURES`), in no index.
A count is one UpdateItem, conditional on the window not having ended, that adds
one and returns the item; failing that (no item, or its window ended), a Put that
starts a window, conditional on the same. Of several servers starting a window at
once one Put wins, and the others count in it on their next try. The item carries
`ttl` (epoch seconds): the stack turns Time to Live on for it, so DynamoDB deletes
items of ended windows; on tables made otherwise (`referrals db upgrade`) they stay,
a few dozen bytes an address, and are simply started again.
"""

import math
from datetime import datetime, timedelta

from boto3.dynamodb.conditions import Attr

from referrals.adapters.dynamodb.access import ConditionFailed, Tables
from referrals.adapters.dynamodb.expressions import put, update
from referrals.adapters.dynamodb.tables import TTL_ATTRIBUTE
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.errors import Conflict

ATTEMPTS = 5  # each lost race means another server counted: rarely more than one


def count_failure(
    tables: Tables, subject: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    key = {"pk": f"LIMIT#{subject}", "sk": "FAILURES"}
    ends_at, now_micros = Attr("window_ends_at"), to_micros(now)
    one_more = update(tables.main, key, add={"failures": 1}, condition=ends_at.gt(now_micros))
    ends = now + window
    started = {
        **key,
        "failures": 1,
        "window_ends_at": to_micros(ends),
        TTL_ATTRIBUTE: math.ceil(ends.timestamp()),
    }
    start = put(tables.main, started, Attr("pk").not_exists() | ends_at.lte(now_micros))
    for _ in range(ATTEMPTS):
        try:
            item = tables.send(one_more, returning=True)
            return int(item["failures"]), from_micros(int(item["window_ends_at"]))
        except ConditionFailed:
            pass  # no window, or it ended: start one
        try:
            tables.send(start)
            return 1, ends
        except ConditionFailed:
            pass  # another server started one meanwhile: count in it
    raise Conflict(f"the failure count of {subject} kept changing")
