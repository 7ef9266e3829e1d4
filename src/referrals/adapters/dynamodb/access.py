"""The two tables, read and written through one boto3 client, in plain values.

Base-table reads are strongly consistent; index queries cannot be. Queries walk
their pages with the client's paginator and stop asking for pages once the caller
has what it needs. A write sent on its own (not at a unit of work's commit) whose
condition is false raises ConditionFailed, for the caller to read as "someone else
got there first"; a transaction cancelled by a condition or by a concurrent
transaction raises TransactionCancelled, a Conflict that the use case retries.
"""

from collections.abc import Iterator, Sequence
from typing import Any

from boto3.dynamodb.conditions import ConditionBase
from botocore.exceptions import ClientError

from referrals.adapters.dynamodb.expressions import Values, Write, expression, from_item, to_item
from referrals.adapters.dynamodb.tables import main_table_name, outbox_table_name
from referrals.domain.errors import Conflict

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
# The reasons a transaction is cancelled by a race (and the "None" of its other writes).
RACES = frozenset({"None", "ConditionalCheckFailed", "TransactionConflict"})


class ConditionFailed(Exception):
    """A write sent on its own found its condition false: it changed nothing."""


class TransactionCancelled(Conflict):
    """A TransactWriteItems lost a race; `reasons` holds each write's, in order."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__(f"transaction cancelled: {list(reasons)}")
        self.reasons = list(reasons)


class Tables:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.main = main_table_name(prefix)
        self.outbox = outbox_table_name(prefix)

    def get(self, table: str, key: Values, *, consistent: bool = True) -> Values | None:
        params = {"ConsistentRead": True} if consistent else {}
        found = self.client.get_item(TableName=table, Key=to_item(key), **params)
        return from_item(found["Item"]) if "Item" in found else None

    def query(
        self,
        table: str,
        key: ConditionBase,
        *,
        index: str | None = None,
        filter: ConditionBase | None = None,
        project: str | None = None,
        consistent: bool = False,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[Values]:
        """The items of a Query, page after page, at most `limit` (each page asks for as
        many: a page can stop short of it only when filtered or at 1 MB)."""
        config = {} if limit is None else {"MaxItems": limit, "PageSize": limit}
        params = self._query(table, key, index, filter, consistent)
        if project is not None:
            params["ProjectionExpression"] = project
        if newest_first:
            params["ScanIndexForward"] = False
        pages = self.client.get_paginator("query").paginate(**params, PaginationConfig=config)
        for page in pages:
            for item in page["Items"]:
                yield from_item(item)

    def count(
        self, table: str, key: ConditionBase, *, index: str | None = None, consistent: bool = False
    ) -> int:
        """How many items a Query finds (DynamoDB still reads them to count them)."""
        params = self._query(table, key, index, None, consistent)
        pages = self.client.get_paginator("query").paginate(**params, Select="COUNT")
        return sum(int(page["Count"]) for page in pages)

    @staticmethod
    def _query(
        table: str,
        key: ConditionBase,
        index: str | None,
        filter: ConditionBase | None,
        consistent: bool,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"TableName": table, **expression(key=key, filter=filter)}
        if index is not None:
            params["IndexName"] = index
        if consistent:
            params["ConsistentRead"] = True
        return params

    def send(self, write: Write, *, returning: bool = False) -> Values:
        """Send one write now, outside any transaction; with `returning`, the item as the
        Update left it. ConditionFailed if its condition is false."""
        [(kind, params)] = write.items()
        method = {
            "Put": self.client.put_item,
            "Update": self.client.update_item,
            "Delete": self.client.delete_item,
        }[kind]
        if returning:
            params = {**params, "ReturnValues": "ALL_NEW"}
        try:
            response = method(**params)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConditionFailed(kind) from error
            raise
        return from_item(response.get("Attributes", {}))

    def transact(self, writes: list[Write]) -> None:
        """One atomic TransactWriteItems; TransactionCancelled if it lost a race."""
        if len(writes) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{len(writes)} writes exceed one transaction")
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                cancelled = error.response.get("CancellationReasons", [])
                reasons = [r.get("Code", "None") for r in cancelled]
                if set(reasons) <= RACES:
                    raise TransactionCancelled(reasons) from error
            raise
