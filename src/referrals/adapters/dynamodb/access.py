"""The two tables, read and written through one boto3 client, in plain values.

Base-table reads are strongly consistent; index queries cannot be. Queries walk
their pages with the client's paginator and stop asking for pages once the caller
has what it needs. An index that projects keys only gives the keys of the items,
which `hydrate` reads from the table (BatchGetItem, strongly consistent). A query of
an index that a table migrating from the earlier design has not built yet (or is
still filling) reads its retired twin, which has the same keys (`tables.REPLACED_BY`).
A write sent on its own (not at a unit of work's commit) whose condition is false
raises ConditionFailed, for the caller to read as "someone else got there first"; a
transaction cancelled by a condition or by a concurrent transaction raises
TransactionCancelled, a Conflict that the use case retries.
"""

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from boto3.dynamodb.conditions import ConditionBase
from botocore.exceptions import ClientError

from referrals.adapters.dynamodb.expressions import Values, Write, expression, from_item, to_item
from referrals.adapters.dynamodb.tables import REPLACED_BY, main_table_name, outbox_table_name
from referrals.domain.errors import Conflict

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
MAX_BATCH_GET = 100  # DynamoDB's limit of keys per BatchGetItem
# How a Query of an index the table lacks, or is still building, is refused.
NO_SUCH_INDEX = frozenset({"ValidationException", "ResourceNotFoundException"})
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
        for page in self._pages(params, PaginationConfig=config):
            for item in page["Items"]:
                yield from_item(item)

    def count(
        self, table: str, key: ConditionBase, *, index: str | None = None, consistent: bool = False
    ) -> int:
        """How many items a Query finds (DynamoDB still reads them to count them)."""
        params = self._query(table, key, index, None, consistent)
        return sum(int(page["Count"]) for page in self._pages(params, Select="COUNT"))

    def _pages(self, params: dict[str, Any], **extra: Any) -> Iterator[dict[str, Any]]:
        """The pages of a Query; of the retired twin of its index if the table has not
        built that index yet (the first page tells)."""
        paginator = self.client.get_paginator("query")
        pages = iter(paginator.paginate(**params, **extra))
        try:
            first = next(pages, None)
        except ClientError as error:
            twin = REPLACED_BY.get(params.get("IndexName", ""))
            # DynamoDB answers ValidationException (moto: ResourceNotFoundException).
            if twin is None or error.response["Error"]["Code"] not in NO_SUCH_INDEX:
                raise
            pages = iter(paginator.paginate(**{**params, "IndexName": twin}, **extra))
            first = next(pages, None)
        if first is not None:
            yield first
            yield from pages

    def hydrate(
        self,
        table: str,
        indexed: Iterable[Values],
        *,
        chunk: int = MAX_BATCH_GET,
        project: str | None = None,
    ) -> Iterator[Values]:
        """The items whose keys `indexed` gives (from an index that projects keys only), in
        its order, read `chunk` keys at a time by strongly consistent BatchGetItems; an item
        deleted meanwhile is skipped."""
        keys = ({"pk": item["pk"], "sk": item["sk"]} for item in indexed)
        while batch := list(islice(keys, max(1, min(chunk, MAX_BATCH_GET)))):
            found = {(i["pk"], i["sk"]): i for i in self._batch_get(table, batch, project)}
            for key in batch:
                item = found.get((key["pk"], key["sk"]))
                if item is not None:
                    yield item

    def _batch_get(self, table: str, keys: list[Values], project: str | None) -> list[Values]:
        request: dict[str, Any] = {"Keys": [to_item(k) for k in keys], "ConsistentRead": True}
        if project is not None:
            request["ProjectionExpression"] = f"pk, sk, {project}"
        found: list[Values] = []
        pending: dict[str, Any] = {table: request}
        for attempt in range(10):
            response = self.client.batch_get_item(RequestItems=pending)
            found += [from_item(i) for i in response.get("Responses", {}).get(table, [])]
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return found
            # Throttled in part: DynamoDB hands back what it did not read; ask again.
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise Conflict(f"DynamoDB kept {len(pending[table]['Keys'])} keys unread")

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
