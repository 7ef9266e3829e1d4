"""DynamoDB capacity units per signup and per paid reward, counted from the requests made.

moto does not report consumed capacity faithfully, so every request the store
sends is recorded and priced with DynamoDB's published rules:

- a write costs ceil(item KB) WCU on the table, twice that inside a transaction
  (a ConditionCheck costs like a write); each global secondary index the item
  enters or leaves costs ceil(item KB) more, one whose copy of the item changes
  (an attribute it projects: every one, or the keys alone for KEYS_ONLY) as much,
  and two when the item's index key changes (a delete and a put);
- a read costs ceil(bytes / 4 KB) RCU, half of that when eventually consistent
  (index queries always are), at least one such unit per request; a BatchGetItem
  costs each item read as a GetItem would.

    python -m bench.dynamodb_capacity [--signups 400] [--referrers 40]
"""

import argparse
import json
import math
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from referrals.adapters.dynamodb.tables import KEYS_ONLY_GSIS, MAIN_GSIS, OUTBOX_GSIS

Item = dict[str, dict[str, Any]]


def item_bytes(item: Item | None) -> int:
    """DynamoDB's item size: attribute names plus values (numbers about 1 byte per 2 digits)."""
    if not item:
        return 0
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, raw = next(iter(value.items()))
        size += len(str(raw).encode()) if kind == "S" else math.ceil(len(str(raw)) / 2) + 1
    return size


def gsi_writes(
    before: Item | None,
    after: Item | None,
    gsis: dict[str, Any],
    keys_only: frozenset[str] = frozenset(),
) -> int:
    units = 0
    for index, ((pk, _), (sk, _)) in gsis.items():
        was = before is not None and pk in before and sk in before
        now = after is not None and pk in after and sk in after
        if not (was or now):
            continue
        kb = math.ceil(max(item_bytes(before), item_bytes(after)) / 1024)
        if was and now and (before[pk], before[sk]) != (after[pk], after[sk]):  # type: ignore[index]
            units += 2 * kb
        elif was != now:
            units += kb
        elif index in keys_only:
            continue  # its copy holds the keys alone, which did not change
        elif before != after:
            units += kb
    return units


class Metered:
    """A DynamoDB client that prices every request it forwards."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self.gsis = {f"{prefix}-main": MAIN_GSIS, f"{prefix}-outbox": OUTBOX_GSIS}
        self.keys = {f"{prefix}-main": ("pk", "sk"), f"{prefix}-outbox": ("id",)}
        self.wcu = 0.0
        self.rcu = 0.0
        self.requests: Counter[str] = Counter()
        # A paginator sends its Queries from the client itself, past this wrapper:
        # every Query is priced from the client's own events instead.
        events = client.meta.events
        events.register("provide-client-params.dynamodb.Query", self._query_sent)
        events.register("after-call.dynamodb.Query", self._query_answered)

    def _query_sent(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["metered_params"] = dict(params)

    def _query_answered(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        params = context["metered_params"]
        self.requests["query"] += 1
        size = sum(item_bytes(i) for i in parsed.get("Items", []))
        if params.get("Select") == "COUNT":
            size = int(parsed["Count"]) * 400  # items are read even to be counted
        factor = 1.0 if params.get("ConsistentRead") else 0.5
        self.rcu += factor * max(1, math.ceil(size / 4096))

    def _get(self, table: str, key: Item) -> Item | None:
        found: Item | None = self._client.get_item(TableName=table, Key=key).get("Item")
        return found

    def _write(self, table: str, key: Item, run: Any, factor: int) -> Any:
        before = self._get(table, key)
        result = run()
        after = self._get(table, key)
        self.wcu += factor * max(1, math.ceil(max(item_bytes(before), item_bytes(after)) / 1024))
        self.wcu += self._gsi_writes(table, before, after)
        return result

    def _gsi_writes(self, table: str, before: Item | None, after: Item | None) -> int:
        keys_only = KEYS_ONLY_GSIS if table.endswith("-main") else frozenset()
        return gsi_writes(before, after, self.gsis[table], keys_only)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in {
            "get_item",
            "batch_get_item",
            "put_item",
            "update_item",
            "transact_write_items",
        }:
            return method

        def call(**kwargs: Any) -> Any:
            self.requests[name] += 1
            if name == "batch_get_item":
                result = method(**kwargs)
                for table, found in result.get("Responses", {}).items():
                    factor = 1.0 if kwargs["RequestItems"][table].get("ConsistentRead") else 0.5
                    for item in found:  # each item as a GetItem, projected or not
                        self.rcu += factor * max(1, math.ceil(item_bytes(item) / 4096))
                return result
            if name == "get_item":
                result = method(**kwargs)
                factor = 1.0 if kwargs.get("ConsistentRead") else 0.5
                self.rcu += factor * max(1, math.ceil(item_bytes(result.get("Item")) / 4096))
                return result
            if name == "put_item":
                key = {k: kwargs["Item"][k] for k in self.keys[kwargs["TableName"]]}
                return self._write(kwargs["TableName"], key, lambda: method(**kwargs), 1)
            if name == "update_item":
                return self._write(kwargs["TableName"], kwargs["Key"], lambda: method(**kwargs), 1)
            # A transaction: price each item as a transactional write.
            items = kwargs["TransactItems"]
            befores = []
            for op in items:
                body = next(iter(op.values()))
                table = body["TableName"]
                key = body.get("Key") or {k: body["Item"][k] for k in self.keys[table]}
                befores.append((table, key, self._get(table, key)))
            result = method(**kwargs)
            for table, key, before in befores:
                after = self._get(table, key)
                kb = max(1, math.ceil(max(item_bytes(before), item_bytes(after)) / 1024))
                self.wcu += 2 * kb + self._gsi_writes(table, before, after)
            return result

        return call

    def snapshot(self) -> tuple[float, float, Counter[str]]:
        return self.wcu, self.rcu, Counter(self.requests)


def measure(signups: int, referrers: int) -> dict[str, Any]:
    """Price `signups` signups over `referrers` referrers (each a new referee, enrolled,
    no email), then the payout run that pays them all: units per signup and per paid
    reward."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")

    import boto3
    from moto import mock_aws

    from referrals.adapters.clock import SystemClock
    from referrals.adapters.dynamodb.store import DynamoStore
    from referrals.adapters.reports.s3 import S3ReportStore
    from referrals.domain.periods import Period
    from referrals.domain.program import RuleVersion
    from referrals.services.payouts import run_payout
    from referrals.services.referrers import enroll
    from referrals.services.signups import sign_up

    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-2")
        DynamoStore(raw, "bench").create_tables()
        client = Metered(raw, "bench")
        store = DynamoStore(client, "bench")
        s3 = boto3.client("s3", region_name="us-east-2")
        s3.create_bucket(
            Bucket="bench", CreateBucketConfiguration={"LocationConstraint": "us-east-2"}
        )
        clock = SystemClock()
        codes = [enroll(store, clock, f"r{n:04d}").referrer.code for n in range(referrers)]
        w0, r0, q0 = client.snapshot()
        october = datetime(2026, 10, 10, tzinfo=UTC)
        for n in range(signups):
            code = codes[n % len(codes)]
            sign_up(store, clock, RuleVersion(), f"u{n:06d}", code, signed_up_at=october)
        w1, r1, q1 = client.snapshot()
        run = run_payout(store, S3ReportStore(s3, "bench"), clock, Period(2026, 10))
        w2, r2, q2 = client.snapshot()
    assert run.referral_count == signups
    signup = {
        "wcu": round((w1 - w0) / signups, 2),
        "rcu": round((r1 - r0) / signups, 2),
        "requests": {k: round(v / signups, 2) for k, v in (q1 - q0).items()},
    }
    paid = {
        "wcu": round((w2 - w1) / signups, 2),
        "rcu": round((r2 - r1) / signups, 2),
        "requests": {k: round(v / signups, 3) for k, v in (q2 - q1).items()},
    }
    return {"per_signup": signup, "per_paid_reward": paid}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signups", type=int, default=400)
    parser.add_argument("--referrers", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(measure(args.signups, args.referrers), indent=2))


if __name__ == "__main__":
    main()
