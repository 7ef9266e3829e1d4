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
from typing import Any

from botocore.exceptions import ClientError

from referrals.adapters.dynamodb.tables import TTL_ATTRIBUTE
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.errors import Conflict

ATTEMPTS = 5  # each lost race means another server counted: rarely more than one
NAMES = {"#failures": "failures", "#ends": "window_ends_at"}


def count_failure(
    client: Any, table: str, subject: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    key = {"pk": {"S": f"LIMIT#{subject}"}, "sk": {"S": "FAILURES"}}
    running = {":now": {"N": str(to_micros(now))}}
    for _ in range(ATTEMPTS):
        try:
            item = client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="ADD #failures :one",
                ConditionExpression="#ends > :now",
                ExpressionAttributeNames=NAMES,
                ExpressionAttributeValues={**running, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
            return int(item["failures"]["N"]), from_micros(int(item["window_ends_at"]["N"]))
        except ClientError as error:
            if not _lost(error):
                raise
        ends = now + window
        try:
            client.put_item(
                TableName=table,
                Item={
                    **key,
                    "failures": {"N": "1"},
                    "window_ends_at": {"N": str(to_micros(ends))},
                    TTL_ATTRIBUTE: {"N": str(math.ceil(ends.timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR #ends <= :now",
                ExpressionAttributeNames={"#ends": "window_ends_at"},
                ExpressionAttributeValues=running,
            )
            return 1, ends
        except ClientError as error:
            if not _lost(error):
                raise
    raise Conflict(f"the failure count of {subject} kept changing")


def _lost(error: ClientError) -> bool:
    return bool(error.response["Error"]["Code"] == "ConditionalCheckFailedException")
