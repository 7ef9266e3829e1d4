"""The store ports on DynamoDB (boto3 client), for the serverless shape.

A unit of work reads immediately (strongly consistent where DynamoDB allows it:
base-table reads, not index reads) and collects its writes into one
TransactWriteItems at commit, with conditions that make every race visible as
a Conflict for the use case to retry. Payout steps that touch many items write
in bounded transactions, each carrying a condition on the run's lease, so a run
that lost its lease can never assign or pay a reward.
"""

import json
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import groupby
from types import TracebackType
from typing import Any, Self

from botocore.exceptions import ClientError

from referrals.adapters.dynamodb import auth_failures
from referrals.adapters.dynamodb.stats import DynamoStats
from referrals.adapters.dynamodb.tables import ensure_tables, main_table_name, outbox_table_name
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Earnings,
    Event,
    EventStatus,
    LineKind,
    PayoutLine,
    PayoutRun,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    Role,
    RunStatus,
    SignupParties,
    SignupSlot,
    first_id_at,
    payout_floor,
)

MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
PAYOUT_CHUNK = 99  # reward updates per transaction, plus the lease condition
MAX_ITEM_BYTES = 350_000  # below DynamoDB's 400 KB per item, leaving room for keys
INDEX_WAIT_SECONDS = 30.0  # how long a run waits for an index to catch up

Item = dict[str, dict[str, Any]]
Items = list[Item]  # an alias: classes below define a `list` method
PENDING, PROCESSING, PAID, HELD, CLAWED_BACK = (
    s.value
    for s in (
        ReferralStatus.PENDING,
        ReferralStatus.PROCESSING,
        ReferralStatus.PAID,
        ReferralStatus.HELD,
        ReferralStatus.CLAWED_BACK,
    )
)
CLAWBACK = RewardKind.CLAWBACK.value
# A released user's items are kept in memory to be sent back to pending without a
# second read; a user with more in one run is read again by the prefix of their key.
RELEASE_BUFFER = 1000
ONE_MICROSECOND = timedelta(microseconds=1)


def S(value: str) -> dict[str, str]:
    return {"S": value}


def N(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _opt_s(item: Item, name: str) -> str | None:
    return item[name]["S"] if name in item else None


def _opt_time(item: Item, name: str) -> datetime | None:
    return from_micros(int(item[name]["N"])) if name in item else None


def _referrer_pk(user_id: str) -> str:
    return f"REFERRER#{user_id}"


def _unpaid_sk(referral_id: str, payable_micros: int) -> str:
    # Zero-padded so that string order is time order: the cutoff is a key condition.
    # Keyed by when the reward becomes payable (created_at + hold), not when it was
    # earned, so a run's Query stops at its cutoff and never reads rewards on hold.
    return f"{payable_micros:020d}#{referral_id}"


def _entry_pk(referral_id: str) -> str:
    # Entries live under their referral's id, not in the referral's own item
    # collection (`REFEREE#<referee>`): an entry knows only the referral's id, and
    # keyed by it `for_referral` is one strongly consistent Query, even for a
    # referral added in the same unit of work.
    return f"REFERRAL#{referral_id}"


def _reward_claim_key(reward_id: str) -> Item:
    # Makes an entry id unique across referrals and finds its item by id with
    # consistent reads (two GetItems), where an index would be eventually consistent.
    return {"pk": S(f"REWARD#{reward_id}"), "sk": S("REWARD")}


def _referral_key(referee_id: str) -> Item:
    # The referral item is also the referee's claim: one referral per referee.
    return {"pk": S(f"REFEREE#{referee_id}"), "sk": S("REFERRAL")}


def _referral_claim_key(referral_id: str) -> Item:
    # Makes a referral id unique and finds its item by id with consistent reads (two
    # GetItems): the `by_id` index is eventually consistent, so a conversion or a
    # review right after the signup could miss the referral through it.
    return {"pk": S(f"REFID#{referral_id}"), "sk": S("REFID")}


def _payee(item: Item) -> str:
    """Who an item pays: an entry's user, a referral's referrer."""
    payee: str = item["user_id"]["S"] if "user_id" in item else item["referrer_id"]["S"]
    return payee


def _line_kind(item: Item) -> LineKind:
    clawback = "entry_kind" in item and item["entry_kind"]["S"] == CLAWBACK
    return LineKind.CLAWBACK if clawback else LineKind.REWARD


def _payable_micros(item: Item) -> int:
    hold = int(item["hold_micros"]["N"]) if "hold_micros" in item else 0
    return int(item["created_at"]["N"]) + hold


def _status_update(
    table: str,
    key: Item,
    item_id: str,
    current: ReferralStatus,
    to: ReferralStatus,
    note: str | None,
    payable_at: datetime,
) -> dict[str, Any]:
    """A transition of a referral's reward or an entry, conditioned on its current state."""
    sets = ["status_pk = :to"]
    removes: list[str] = []
    values: Item = {":to": S(to.value), ":from": S(current.value)}
    if note is None:
        removes.append("note")
    else:
        sets.append("note = :note")
        values[":note"] = S(note)
    # Only a pending reward is in the sparse `unpaid` index: one moved out of
    # pending (held, rejected, reversed) leaves it, one approved back into it
    # returns at its payable time, so the next run whose cutoff is later pays it.
    # The period attributes stay: a paid reward clawed back later is still in the
    # lines of the run that paid it, whose report must render the same again.
    if to is ReferralStatus.PENDING:
        sets.append("unpaid_pk = :unpaid, unpaid_sk = :unpaid_sk")
        values[":unpaid"] = S("UNPAID")
        values[":unpaid_sk"] = S(_unpaid_sk(item_id, to_micros(payable_at)))
    else:
        removes += ["unpaid_pk", "unpaid_sk"]
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    return {
        "Update": {
            "TableName": table,
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": "status_pk = :from",
            "ExpressionAttributeValues": values,
        }
    }


def _cancel_reasons(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


class DynamoStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.main = main_table_name(prefix)
        self.outbox = outbox_table_name(prefix)

    def unit_of_work(self) -> "DynamoUnitOfWork":
        return DynamoUnitOfWork(self)

    def read(self) -> "DynamoUnitOfWork":
        return DynamoUnitOfWork(self)

    def check(self) -> None:
        self.client.get_item(TableName=self.main, Key={"pk": S("HEALTH"), "sk": S("HEALTH")})

    def check_write(self) -> None:
        # DynamoDB has no write lock to take or hold: each write stands alone.
        self.check()

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        return auth_failures.count_failure(self.client, self.main, subject, now, window)

    def dispose(self) -> None:
        return None  # HTTP requests hold no transaction; the client may be shared

    def get(self, table: str, key: Item) -> Item | None:
        item: Item | None = self.client.get_item(TableName=table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    def query(self, limit: int | None = None, **kwargs: Any) -> Iterator[Item]:
        """Every item a Query returns, page after page, at most `limit`."""
        returned = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - returned
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                yield item
                returned += 1
            if "LastEvaluatedKey" not in page or (limit is not None and returned >= limit):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self, **kwargs: Any) -> int:
        total = 0
        while True:
            page = self.client.query(Select="COUNT", **kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def transact(self, writes: list[dict[str, Any]]) -> None:
        """One atomic TransactWriteItems; a lost condition or a concurrent writer is a Conflict."""
        if len(writes) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{len(writes)} writes exceed one transaction")
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = _cancel_reasons(error)
                if set(reasons) <= {"None", "ConditionalCheckFailed", "TransactionConflict"}:
                    raise Conflict(f"transaction cancelled: {reasons}") from error
            raise

    def create_tables(self) -> None:
        """Create the tables that do not exist and check those that do (`db upgrade`).

        Idempotent: a deployed stack's tables, made by the CDK from the same
        definitions, pass as they are; a table with other keys is an error naming it.
        """
        ensure_tables(self.client, self.main.removesuffix("-main"), create=True)

    def require_tables(self) -> None:
        """Check both tables as `create_tables` does, but create nothing."""
        ensure_tables(self.client, self.main.removesuffix("-main"), create=False)


class DynamoReferrers:
    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store
        self._profiles: dict[str, tuple[Referrer, Referrer]] = {}
        self._profile_writes: dict[str, dict[str, Any]] = {}

    def get(self, user_id: str) -> Referrer | None:
        item = self._store.get(
            self._store.main, {"pk": S(_referrer_pk(user_id)), "sk": S("PROFILE")}
        )
        return _referrer(item) if item else None

    def by_code(self, code: str) -> Referrer | None:
        key = {"pk": S(f"CODE#{normalize_code(code)}"), "sk": S("CODE")}
        claim = self._store.get(self._store.main, key)
        return self.get(claim["user_id"]["S"]) if claim else None

    def add(self, referrer: Referrer) -> None:
        profile: Item = {
            "pk": S(_referrer_pk(referrer.user_id)),
            "sk": S("PROFILE"),
            "user_id": S(referrer.user_id),
            "code": S(referrer.code),
            "referral_count": N(referrer.referral_count),
            "created_at": N(to_micros(referrer.created_at)),
        }
        for name, value in (
            ("email", referrer.email),
            ("ip_hash", referrer.ip_hash),
            ("device_hash", referrer.device_hash),
        ):
            if value is not None:
                profile[name] = S(value)
        claim: Item = {
            "pk": S(f"CODE#{normalize_code(referrer.code)}"),
            "sk": S("CODE"),
            "user_id": S(referrer.user_id),
        }
        self._uow.put(self._store.main, profile)
        self._uow.put(self._store.main, claim)

    def increment_referral_count(self, user_id: str) -> Referrer:
        _, pending = self._profile(user_id)
        updated = replace(pending, referral_count=pending.referral_count + 1)
        self._update_profile(user_id, updated)
        return updated

    def give_back_count(self, user_id: str) -> None:
        _, pending = self._profile(user_id)
        self._update_profile(user_id, replace(pending, referral_count=pending.referral_count - 1))

    def add_earned(
        self, user_id: str, month: str, cents: int, seen: Referrer | None = None
    ) -> None:
        read, pending = self._profile(user_id)
        if seen is not None and seen.cap_counters != read.cap_counters:
            raise Conflict("the referrer's earnings changed meanwhile")
        self._update_profile(user_id, pending.counting(month, cents))

    def _profile(self, user_id: str) -> tuple[Referrer, Referrer]:
        """The profile as read (consistently) and as this unit of work will write it."""
        if user_id not in self._profiles:
            current = self.get(user_id)
            if current is None:
                raise Conflict(f"no referrer {user_id!r}")
            self._profiles[user_id] = (current, current)
            self._profile_writes[user_id] = {}
        return self._profiles[user_id]

    def _update_profile(self, user_id: str, updated: Referrer) -> None:
        """One Update of the profile per unit of work (a transaction writes an item once),
        rebuilt as the signup or review adds to it. Optimistic: conditioned on what was
        read, so of two concurrent writers one commits and the other gets a Conflict
        and retries."""
        read, _ = self._profiles[user_id]
        self._profiles[user_id] = (read, updated)
        sets, conditions = [], []
        values: Item = {}
        if updated.referral_count != read.referral_count:
            sets.append("referral_count = :count")
            conditions.append("referral_count = :old_count")
            values |= {":count": N(updated.referral_count), ":old_count": N(read.referral_count)}
        if updated.cap_counters != read.cap_counters:
            sets.append("cap_lifetime_cents = :lifetime, cap_month_cents = :month_cents")
            values |= {
                ":lifetime": N(updated.cap_lifetime_cents),
                ":month_cents": N(updated.cap_month_cents),
                ":old_lifetime": N(read.cap_lifetime_cents),
                ":old_month_cents": N(read.cap_month_cents),
            }
            # A profile written before the caps has no counters: they read as zero.
            conditions.append(
                "(attribute_not_exists(cap_lifetime_cents) OR cap_lifetime_cents = :old_lifetime)"
                " AND (attribute_not_exists(cap_month_cents)"
                " OR cap_month_cents = :old_month_cents)"
            )
            if updated.cap_month is not None:
                sets.append("cap_month = :month")
                values[":month"] = S(updated.cap_month)
            if read.cap_month is None:
                conditions.append("attribute_not_exists(cap_month)")
            else:
                conditions.append("cap_month = :old_month")
                values[":old_month"] = S(read.cap_month)
        operation = self._profile_writes[user_id]
        if not sets:
            # Back to what was read (a count given back): nothing to write, and an
            # Update queued earlier must not reach the commit.
            if operation:
                self._uow.unwrite(operation)
                operation.clear()
            return
        first = not operation
        operation["Update"] = {
            "TableName": self._store.main,
            "Key": {"pk": S(_referrer_pk(user_id)), "sk": S("PROFILE")},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        if first:
            self._uow.write(operation)

    def earnings(self, user_id: str, now: datetime) -> Earnings:
        # The user's referral rewards and the entries paid to them share the
        # `by_referrer_id` partition of the user (entries carry no ordinal, so they
        # stay out of `by_referrer`).
        items = self._store.query(
            TableName=self._store.main,
            IndexName="by_referrer_id",
            KeyConditionExpression="referrer_pk = :r",
            ExpressionAttributeValues={":r": S(_referrer_pk(user_id))},
            ProjectionExpression="status_pk, reward_cents, created_at, hold_micros, entry_kind",
        )
        now_micros = to_micros(now)
        return Earnings.tally(
            (
                _line_kind(item) is LineKind.CLAWBACK,
                item["status_pk"]["S"],
                _payable_micros(item) > now_micros,
                int(item["reward_cents"]["N"]),
            )
            for item in items
        )


class DynamoReferrals:
    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    def get(self, referral_id: str) -> Referral | None:
        _, current = self._current(referral_id)
        return current

    def by_referee(self, referee_id: str) -> Referral | None:
        item = self._store.get(self._store.main, _referral_key(referee_id))
        return _referral(item) if item else None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        referrers = self._uow.referrers
        referrer = referrers.by_code(code)
        counted = referrers.increment_referral_count(referrer.user_id) if referrer else None
        return SignupParties(counted, self.by_referee(referee_id), referrers.get(referee_id))

    def add(self, referral: Referral) -> None:
        self._uow.put(self._store.main, _referral_item(referral))
        claim = {**_referral_claim_key(referral.id), "referee_id": S(referral.referee_id)}
        self._uow.put(self._store.main, claim)  # a taken id makes the commit a Conflict
        referrer_key = {"pk": S(_referrer_pk(referral.referrer_id)), "sk": S("PROFILE")}
        # A transaction may touch an item once: the signup's counter update already
        # proves the referrer exists; otherwise check it explicitly.
        if not self._uow.touches(self._store.main, referrer_key):
            self._uow.write(
                {
                    "ConditionCheck": {
                        "TableName": self._store.main,
                        "Key": referrer_key,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        key, current = self._current(referral_id)
        if key is None or current is None or current.status not in allowed:
            return None
        self._check_untouched(key, referral_id)
        self._uow.write(
            _status_update(
                self._store.main, key, current.id, current.status, to, note, current.payable_at
            )
        )
        return replace(current, status=to, note=note)

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        key, current = self._current(referral_id)
        if key is None or current is None or current.status is not ReferralStatus.AWAITING:
            return None
        self._check_untouched(key, referral_id)
        changed = replace(current, status=to, hold=hold, receipt=receipt, reward_cents=reward_cents)
        sets = ["status_pk = :to", "receipt = :receipt", "reward_cents = :cents"]
        removes: list[str] = []
        values: Item = {
            ":to": S(to.value),
            ":awaiting": S(ReferralStatus.AWAITING.value),
            ":receipt": S(_receipt_json(receipt)),
            ":cents": N(reward_cents),
        }
        if hold:
            sets.append("hold_micros = :hold")
            values[":hold"] = N(hold // ONE_MICROSECOND)
        else:
            removes.append("hold_micros")
        # An awaiting reward is in no payout index; a pending one enters `unpaid` at
        # the time its new hold ends.
        if to is ReferralStatus.PENDING:
            sets.append("unpaid_pk = :unpaid, unpaid_sk = :unpaid_sk")
            values[":unpaid"] = S("UNPAID")
            values[":unpaid_sk"] = S(_unpaid_sk(changed.id, to_micros(changed.payable_at)))
        else:
            removes += ["unpaid_pk", "unpaid_sk"]
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        self._uow.write(
            {
                "Update": {
                    "TableName": self._store.main,
                    "Key": key,
                    "UpdateExpression": expression,
                    "ConditionExpression": "status_pk = :awaiting",
                    "ExpressionAttributeValues": values,
                }
            }
        )
        return changed

    def _current(self, referral_id: str) -> tuple[Item | None, Referral | None]:
        # The id claim finds the item's key (the referee never changes); the state is
        # read from the base table, both strongly consistent, so a referral is found
        # the moment its signup commits. A queued update is conditioned on the state
        # read: a concurrent transition that commits first makes this commit a
        # Conflict, and the caller's retry reads the new state.
        key = self._key(referral_id)
        item = self._store.get(self._store.main, key) if key else None
        if key is None or item is None or item["id"]["S"] != referral_id:
            return None, None
        return key, _referral(item)

    def _key(self, referral_id: str) -> Item | None:
        claim = self._store.get(self._store.main, _referral_claim_key(referral_id))
        if claim is not None:
            return _referral_key(claim["referee_id"]["S"])
        # A referral written before id claims existed has none: its key comes from
        # the `by_id` index, eventually consistent, which such an old item is in.
        indexed = self._store.query(
            limit=1,
            TableName=self._store.main,
            IndexName="by_id",
            KeyConditionExpression="kind = :k AND id = :id",
            ExpressionAttributeValues={":k": S("REFERRAL"), ":id": S(referral_id)},
            ProjectionExpression="referee_id",
        )
        return next((_referral_key(item["referee_id"]["S"]) for item in indexed), None)

    def _check_untouched(self, key: Item, referral_id: str) -> None:
        if self._uow.touches(self._store.main, key):
            # A transaction may write an item once (DynamoDB refuses a second operation).
            raise ValueError(f"referral {referral_id} is already written in this unit of work")

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        values: Item = {":r": S(_referrer_pk(referrer_id))}
        condition = "referrer_pk = :r"
        if after_ordinal is not None:
            condition += " AND ordinal > :o"
            values[":o"] = N(after_ordinal)
        items = self._store.query(
            limit=limit,
            TableName=self._store.main,
            IndexName="by_referrer",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return [_referral(item) for item in items]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
    ) -> Sequence[Referral]:
        if referrer_id is not None:
            index, partition, value = "by_referrer_id", "referrer_pk", _referrer_pk(referrer_id)
        elif status is not None:
            index, partition, value = "by_status", "status_pk", status.value
        else:
            index, partition, value = "by_id", "kind", "REFERRAL"
        values: Item = {":p": S(value)}
        condition = f"{partition} = :p"
        if after_id is not None:
            condition += " AND id > :after"
            values[":after"] = S(after_id)
        query: dict[str, Any] = {
            "TableName": self._store.main,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        rows: list[Referral] = []
        for item in self._store.query(**query):
            if item["sk"]["S"] != "REFERRAL":
                continue  # an entry paid to the user, in the same indexes
            referral = _referral(item)
            if status is None or referral.status is status:
                rows.append(referral)
                if len(rows) == limit:
                    break
        return rows


class DynamoRewards:
    """Entries besides a referral's own reward: `REFERRAL#<referral_id>` / `REWARD#<id>`.

    They carry the payout attributes of a referral item (status, the sparse
    `unpaid` and `by_period` keys, the beneficiary's `referrer_pk`, `reward_cents`)
    so that the payout steps walk referrals and entries alike.
    """

    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    def add(self, reward: Reward) -> None:
        self._uow.put(self._store.main, _entry_item(reward))
        claim = {**_reward_claim_key(reward.id), "referral_id": S(reward.referral_id)}
        self._uow.put(self._store.main, claim)  # a taken id makes the commit a Conflict

    def _key(self, reward_id: str) -> Item | None:
        claim = self._store.get(self._store.main, _reward_claim_key(reward_id))
        if claim is None:
            return None
        return {"pk": S(_entry_pk(claim["referral_id"]["S"])), "sk": S(f"REWARD#{reward_id}")}

    def _item(self, reward_id: str) -> tuple[Item, Item] | None:
        key = self._key(reward_id)
        item = self._store.get(self._store.main, key) if key else None
        return (key, item) if key and item else None

    def get(self, reward_id: str) -> Reward | None:
        found = self._item(reward_id)
        return _reward(found[1]) if found else None

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        items = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :p AND begins_with(sk, :r)",
            ExpressionAttributeValues={":p": S(_entry_pk(referral_id)), ":r": S("REWARD#")},
            ConsistentRead=True,
        )
        return [_reward(item) for item in items]  # sk order: by id

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        # Read strongly consistent; the update is conditioned on the state read.
        found = self._item(reward_id)
        if found is None:
            return None
        key, item = found
        current = _reward(item)
        if current.status not in allowed:
            return None
        if self._uow.touches(self._store.main, key):
            raise ValueError(f"entry {reward_id} is already written in this unit of work")
        self._uow.write(
            _status_update(
                self._store.main, key, current.id, current.status, to, note, current.payable_at
            )
        )
        return replace(current, status=to, note=note)


class DynamoConversions:
    """`CONVERSION#<external_id>` / `CONVERSION`: the key makes each external id once.

    A user's signup slot is `SLOT#<user_id>` / `SLOT`, created once (a conditional Put).
    """

    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    @staticmethod
    def _key(external_id: str) -> Item:
        return {"pk": S(f"CONVERSION#{external_id}"), "sk": S("CONVERSION")}

    def add(self, conversion: Conversion) -> None:
        item: Item = {
            **self._key(conversion.external_id),
            "external_id": S(conversion.external_id),
            "user_id": S(conversion.user_id),
            "event": S(conversion.event),
            "created_at": N(to_micros(conversion.created_at)),
        }
        if conversion.value_cents is not None:
            item["value_cents"] = N(conversion.value_cents)
        if conversion.referral_id is not None:
            item["referral_id"] = S(conversion.referral_id)
        if conversion.awaits_signup:
            item["awaits_signup"] = {"BOOL": True}
        self._uow.put(self._store.main, item)  # recorded before: the commit is a Conflict

    def get(self, external_id: str) -> Conversion | None:
        item = self._store.get(self._store.main, self._key(external_id))
        return _conversion(item) if item else None

    @staticmethod
    def _slot_key(user_id: str) -> Item:
        return {"pk": S(f"SLOT#{user_id}"), "sk": S("SLOT")}

    def signup_slot(self, user_id: str) -> SignupSlot | None:
        item = self._store.get(self._store.main, self._slot_key(user_id))
        return SignupSlot(user_id, _opt_s(item, "external_id")) if item else None

    def take_signup_slot(self, slot: SignupSlot) -> None:
        item: Item = {**self._slot_key(slot.user_id)}
        if slot.external_id is not None:
            item["external_id"] = S(slot.external_id)
        self._uow.put(self._store.main, item)  # taken meanwhile: the commit is a Conflict


class DynamoApiKeys:
    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    def add(self, key: ApiKey) -> None:
        item: Item = {
            "pk": S("KEYS"),
            "sk": S(key.key_hash),
            "id": S(key.id),
            "role": S(key.role.value),
            "created_at": N(to_micros(key.created_at)),
        }
        if key.name is not None:
            item["key_name"] = S(key.name)  # `name` is a reserved word in expressions
        for attribute in ("expires_at", "revoked_at", "last_used_at"):
            moment = getattr(key, attribute)
            if moment is not None:
                item[attribute] = N(to_micros(moment))
        self._uow.put(self._store.main, item)
        # Ids are unique too (the first admin key's fixed id decides races): claim it.
        self._uow.put(self._store.main, {"pk": S(f"KEYID#{key.id}"), "sk": S("KEYID")})

    def by_hash(self, key_hash: str) -> ApiKey | None:
        item = self._store.get(self._store.main, {"pk": S("KEYS"), "sk": S(key_hash)})
        return _api_key(item) if item is not None else None

    def get(self, key_id: str) -> ApiKey | None:
        # Keys are few (made by hand), and keyed by hash: an admin's look-up by id reads
        # the partition, filtered, rather than keeping a second item per key in step.
        items = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k",
            FilterExpression="#id = :id",
            ExpressionAttributeNames={"#id": "id"},
            ExpressionAttributeValues={":k": S("KEYS"), ":id": S(key_id)},
            ConsistentRead=True,
        )
        return next((_api_key(item) for item in items), None)

    def list(self) -> Sequence[ApiKey]:
        items = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": S("KEYS")},
            ConsistentRead=True,
        )
        return sorted((_api_key(item) for item in items), key=lambda k: (k.created_at, k.id))

    def _update(self, key_hash: str, expression: str, condition: str, values: Item) -> None:
        self._uow.write(
            {
                "Update": {
                    "TableName": self._store.main,
                    "Key": {"pk": S("KEYS"), "sk": S(key_hash)},
                    "UpdateExpression": expression,
                    "ConditionExpression": f"attribute_exists(pk) AND ({condition})",
                    "ExpressionAttributeValues": values,
                }
            }
        )

    def revoke(self, key: ApiKey, at: datetime) -> None:
        self._update(
            key.key_hash,
            "SET revoked_at = :at",
            "attribute_not_exists(revoked_at)",
            {":at": N(to_micros(at))},
        )

    def expire(self, key: ApiKey, at: datetime) -> None:
        values: Item = {":at": N(to_micros(at))}
        if key.expires_at is None:
            unchanged = "attribute_not_exists(expires_at)"
        else:
            unchanged = "expires_at = :read"
            values[":read"] = N(to_micros(key.expires_at))
        condition = f"attribute_not_exists(revoked_at) AND {unchanged}"
        self._update(key.key_hash, "SET expires_at = :at", condition, values)

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        # A touch that lost to another server's fails its condition: a Conflict on commit.
        self._update(
            key_hash,
            "SET last_used_at = :at",
            "attribute_not_exists(last_used_at) OR last_used_at <= :stale",
            {":at": N(to_micros(at)), ":stale": N(to_micros(stale_before))},
        )

    def count(self) -> int:
        return self._store.count(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": S("KEYS")},
            ConsistentRead=True,
        )

    def first_created_at(self) -> datetime | None:
        # Keys are few (made by hand), and sorted by hash: read their times and take the least.
        items = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": S("KEYS")},
            ProjectionExpression="created_at",
            ConsistentRead=True,
        )
        return min((from_micros(int(item["created_at"]["N"])) for item in items), default=None)


class DynamoSessions:
    """Dashboard sessions in their key's id partition (`KEYID#<key id>`, `SESSION#<id>`):
    the cookie names both, so finding one is a GetItem."""

    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    @staticmethod
    def _key(key_id: str, session_id: str) -> Item:
        return {"pk": S(f"KEYID#{key_id}"), "sk": S(f"SESSION#{session_id}")}

    def add(self, session: DashboardSession) -> None:
        item: Item = {
            **self._key(session.key_id, session.id),
            "created_at": N(to_micros(session.created_at)),
            "expires_at": N(to_micros(session.expires_at)),
        }
        if session.ended_at is not None:
            item["ended_at"] = N(to_micros(session.ended_at))
        self._uow.put(self._store.main, item)

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        item = self._store.get(self._store.main, self._key(key_id, session_id))
        if item is None:
            return None
        return DashboardSession(
            session_id,
            key_id,
            from_micros(int(item["created_at"]["N"])),
            from_micros(int(item["expires_at"]["N"])),
            _opt_time(item, "ended_at"),
        )

    def end(self, session: DashboardSession, at: datetime) -> None:
        self._uow.write(
            {
                "Update": {
                    "TableName": self._store.main,
                    "Key": self._key(session.key_id, session.id),
                    "UpdateExpression": "SET ended_at = if_not_exists(ended_at, :at)",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":at": N(to_micros(at))},
                }
            }
        )


class DynamoSecrets:
    """Secrets the service keeps (`SECRET#<name>`, `SECRET`): created once, by the
    conditional Put of the commit, so of two creators one gets a Conflict."""

    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    @staticmethod
    def _key(name: str) -> Item:
        return {"pk": S(f"SECRET#{name}"), "sk": S("SECRET")}

    def get(self, name: str) -> str | None:
        item = self._store.get(self._store.main, self._key(name))
        return item["secret_value"]["S"] if item is not None else None

    def add(self, name: str, value: str, created_at: datetime) -> None:
        item: Item = {
            **self._key(name),
            "secret_value": S(value),  # `value` is a reserved word in expressions
            "created_at": N(to_micros(created_at)),
        }
        self._uow.put(self._store.main, item)


class DynamoPayouts:
    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store
        self._chain_version: int | None = None  # the chain head's, as `lock_chain` read it

    def _key(self, period: str) -> Item:
        return {"pk": S("RUNS"), "sk": S(period)}

    def get(self, period: str) -> PayoutRun | None:
        item = self._store.get(self._store.main, self._key(period))
        return _run(item) if item else None

    def list(self) -> Sequence[PayoutRun]:
        items = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": S("RUNS")},
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return [_run(item) for item in items]

    def last_completed(self) -> PayoutRun | None:
        done = [r for r in self.list() if r.status is RunStatus.COMPLETED]
        return max(done, key=lambda r: r.completed_at or r.started_at, default=None)

    def completed_before(self, period: str) -> PayoutRun | None:
        earlier = self._store.query(
            TableName=self._store.main,
            KeyConditionExpression="pk = :k AND sk < :p",
            ExpressionAttributeValues={":k": S("RUNS"), ":p": S(period)},
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return next((run for run in map(_run, earlier) if run.status is RunStatus.COMPLETED), None)

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        # Claims are conditional writes of their own, not part of the unit of work:
        # the lease must be visible to other processes at once.
        item: Item = {
            **self._key(period),
            "status": S(RunStatus.RUNNING.value),
            "cutoff": N(to_micros(cutoff)),
            "started_at": N(to_micros(now)),
            "lease_owner": S(owner),
            "lease_expires_at": N(to_micros(until)),
            "assigned": N(0),
        }
        try:
            self._store.client.put_item(
                TableName=self._store.main,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        return self._conditional_update(
            period,
            "SET #s = :running, lease_owner = :o, lease_expires_at = :u REMOVE #e",
            "#s <> :completed AND (attribute_not_exists(lease_expires_at)"
            " OR lease_expires_at < :now OR lease_owner = :o)",
            {
                ":running": S(RunStatus.RUNNING.value),
                ":completed": S(RunStatus.COMPLETED.value),
                ":o": S(owner),
                ":u": N(to_micros(until)),
                ":now": N(to_micros(now)),
            },
        )

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        renewed = self._conditional_update(
            period,
            "SET lease_expires_at = :u",
            "lease_owner = :o AND #s = :running",
            {":u": N(to_micros(until)), ":o": S(owner), ":running": S(RunStatus.RUNNING.value)},
        )
        if renewed:
            self._uow.fence = (period, owner)
        return renewed

    def _conditional_update(self, period: str, update: str, condition: str, values: Item) -> bool:
        names = {
            k: v for k, v in {"#s": "status", "#e": "error"}.items() if k in update + condition
        }
        try:
            self._store.client.update_item(
                TableName=self._store.main,
                Key=self._key(period),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def _fenced(self, period: str, extra: str = "", values: Item | None = None) -> dict[str, Any]:
        """The run-item write that every payout transaction carries: fails if the lease is lost."""
        if self._uow.fence is None or self._uow.fence[0] != period:
            raise Conflict("payout writes need a renewed lease in this unit of work")
        return {
            "Update": {
                "TableName": self._store.main,
                "Key": self._key(period),
                "UpdateExpression": extra or "SET lease_owner = :o",
                "ConditionExpression": "lease_owner = :o AND #s = :running",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":o": S(self._uow.fence[1]),
                    ":running": S(RunStatus.RUNNING.value),
                    **(values or {}),
                },
            }
        }

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        """Move pending rewards to the run, up to `limit`, walking the sparse `unpaid` index.

        The index is eventually consistent: it may still list rewards that were
        just moved. Their update fails its `pending` condition and is skipped,
        and the walk goes on, so a short batch means the index is exhausted.
        Moved rewards leave the sparse index, so there is nothing to skip: `after`
        is not needed.
        """
        candidates = self._store.query(
            TableName=self._store.main,
            IndexName="unpaid",
            KeyConditionExpression="unpaid_pk = :u AND unpaid_sk < :cutoff",
            ExpressionAttributeValues={
                ":u": S("UNPAID"),
                ":cutoff": S(f"{to_micros(cutoff):020d}"),
            },
        )
        moved = 0
        chunk: Items = []
        for item in candidates:
            chunk.append(item)
            if len(chunk) == min(PAYOUT_CHUNK, limit - moved):
                got = self._move(period, chunk)
                if got < 0:  # the lease was lost: stop at once
                    return -1, None
                moved += got
                chunk = []
                if moved >= limit:
                    break
        if chunk and moved < limit:
            got = self._move(period, chunk)
            if got < 0:
                return -1, None
            moved += got
        return moved, None

    def _move(self, period: str, items: Items) -> int:
        def update(item: Item) -> dict[str, Any]:
            return {
                "Update": {
                    "TableName": self._store.main,
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "UpdateExpression": "SET status_pk = :processing, payout_period = :p,"
                    " period_pk = :p, period_sk = :psk REMOVE unpaid_pk, unpaid_sk",
                    "ConditionExpression": "status_pk = :pending",
                    "ExpressionAttributeValues": {
                        ":processing": S(PROCESSING),
                        ":pending": S(PENDING),
                        ":p": S(period),
                        ":psk": S(f"{_payee(item)}#{item['id']['S']}"),
                    },
                }
            }

        return self._fenced_writes(
            period, items, update, counter="SET lease_owner = :o ADD assigned :n"
        )

    def _fenced_writes(
        self,
        period: str,
        items: Items,
        write: Callable[[Item], dict[str, Any]],
        counter: str = "",
        sign: int = 1,
    ) -> int:
        """Write `items` in one transaction with the lease condition; skip items already moved.

        `counter` updates the run item with `:n`, the number written times `sign`.
        Returns how many were written, or -1 if the lease was lost.
        """
        for attempt in range(10):
            if not items:
                return 0
            values = {":n": N(sign * len(items))} if counter else None
            writes = [self._fenced(period, counter, values), *(write(i) for i in items)]
            try:
                self._store.client.transact_write_items(TransactItems=writes)
                return len(items)
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = _cancel_reasons(error)
            if reasons[0] == "ConditionalCheckFailed":
                return -1
            # Drop the items whose condition failed (another writer got there first);
            # retry the rest, after a pause if it was a mere transaction conflict.
            items = [
                i for i, r in zip(items, reasons[1:], strict=True) if r != "ConditionalCheckFailed"
            ]
            if "TransactionConflict" in reasons:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise Conflict("payout writes kept conflicting")

    def _period_items(self, period: str) -> Iterator[Item]:
        return self._store.query(
            TableName=self._store.main,
            IndexName="by_period",
            KeyConditionExpression="period_pk = :p",
            ExpressionAttributeValues={":p": S(period)},
        )

    def _wait_for_index(self, period: str) -> None:
        """Wait until the `by_period` index shows every reward the run assigned."""
        run = self._store.get(self._store.main, self._key(period))
        if run is None:
            return  # rewards imported as paid: no run counted them, nothing to wait for
        expected = int(run["assigned"]["N"]) if "assigned" in run else 0
        deadline = time.monotonic() + INDEX_WAIT_SECONDS
        while True:
            seen = self._store.count(
                TableName=self._store.main,
                IndexName="by_period",
                KeyConditionExpression="period_pk = :p",
                ExpressionAttributeValues={":p": S(period)},
            )
            if seen == expected:
                return
            if time.monotonic() > deadline:
                raise Conflict(f"index shows {seen} of {expected} rewards of {period}")
            time.sleep(0.2)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        # Every item of the period whatever its state: a reward clawed back after
        # this run paid it stays in its lines (period_pk is never removed once paid).
        self._wait_for_index(period)
        return _aggregate(
            (_payee(i), _line_kind(i), int(i["reward_cents"]["N"]))
            for i in self._period_items(period)
        )

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        totals: dict[tuple[str, LineKind], list[int]] = {}
        pending = self._store.query(
            TableName=self._store.main,
            IndexName="unpaid",
            KeyConditionExpression="unpaid_pk = :u AND unpaid_sk < :cutoff",
            ExpressionAttributeValues={
                ":u": S("UNPAID"),
                ":cutoff": S(f"{to_micros(cutoff):020d}"),
            },
        )
        assigned = (i for i in self._period_items(period) if i["status_pk"]["S"] == PROCESSING)
        for source in (pending, assigned):
            for item in source:
                line = totals.setdefault((_payee(item), _line_kind(item)), [0, 0])
                line[0] += 1
                line[1] += int(item["reward_cents"]["N"])
        order = list(LineKind)  # a user's reward line, then their clawback line
        for user, kind in sorted(totals, key=lambda k: (k[0].encode(), order.index(k[1]))):
            count, cents = totals[user, kind]
            yield PayoutLine(user, count, cents, kind)

    def release(self, period: str, minimum_cents: int) -> tuple[int, int]:
        """Send back to pending every item of the users whose total is below the minimum
        or negative.

        One pass over `by_period`, where a user's items are contiguous (the sort key
        starts with the user id): a user's total is known when the next user starts.
        Released items go back into `unpaid` at their payable time and leave the
        period, in fenced transactions that also take them off the run's `assigned`
        count, so `_wait_for_index` expects what is left.
        """
        if self._uow.fence is None or self._uow.fence[0] != period:
            raise Conflict("payout writes need a renewed lease in this unit of work")
        self._wait_for_index(period)
        released_users = released_cents = 0
        chunk: Items = []

        def back(item: Item) -> dict[str, Any]:
            return {
                "Update": {
                    "TableName": self._store.main,
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "UpdateExpression": "SET status_pk = :pending, unpaid_pk = :u,"
                    " unpaid_sk = :usk REMOVE payout_period, period_pk, period_sk",
                    "ConditionExpression": "status_pk = :processing AND payout_period = :p",
                    "ExpressionAttributeValues": {
                        ":pending": S(PENDING),
                        ":processing": S(PROCESSING),
                        ":p": S(period),
                        ":u": S("UNPAID"),
                        ":usk": S(_unpaid_sk(item["id"]["S"], _payable_micros(item))),
                    },
                }
            }

        def send(items: Iterable[Item]) -> bool:
            """Queue `items` for release, writing full chunks; False if the lease was lost."""
            nonlocal chunk
            for item in items:
                chunk.append(item)
                if len(chunk) == PAYOUT_CHUNK:
                    written = self._fenced_writes(
                        period, chunk, back, "SET lease_owner = :o ADD assigned :n", sign=-1
                    )
                    chunk = []
                    if written < 0:
                        return False
            return True

        for user, group in groupby(self._period_items(period), key=_payee):
            total = count = 0
            settled = False  # some of it is paid already (a completion cut short)
            kept: Items = []
            for item in group:
                total += int(item["reward_cents"]["N"])
                count += 1
                settled = settled or item["status_pk"]["S"] != PROCESSING
                if count <= RELEASE_BUFFER:
                    kept.append(item)
            if settled or total >= payout_floor(minimum_cents):
                continue
            released_users += 1
            released_cents += max(total, 0)  # what was deferred; a debt is not money out
            # Too many to have kept: read the user's items again, by their key prefix.
            items = kept if count <= RELEASE_BUFFER else self._user_items(period, user)
            if not send(items):
                return -1, 0
        if chunk:
            written = self._fenced_writes(
                period, chunk, back, "SET lease_owner = :o ADD assigned :n", sign=-1
            )
            if written < 0:
                return -1, 0
        return released_users, released_cents

    def _user_items(self, period: str, user: str) -> Iterator[Item]:
        return self._store.query(
            TableName=self._store.main,
            IndexName="by_period",
            KeyConditionExpression="period_pk = :p AND begins_with(period_sk, :u)",
            ExpressionAttributeValues={":p": S(period), ":u": S(f"{user}#")},
        )

    def complete(self, run: PayoutRun, owner: str) -> int:
        """Pay the run's rewards in fenced batches, then queue the run's completion.

        Marking rewards paid is idempotent, so a crash part-way is finished by the
        next attempt; the run itself turns completed in the unit of work's commit,
        atomically with its `payout.completed` event.
        """
        self._uow.fence = (run.period, owner)
        self._wait_for_index(run.period)
        paid = 0
        chunk: Items = []

        def pay(item: Item) -> dict[str, Any]:
            return {
                "Update": {
                    "TableName": self._store.main,
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "UpdateExpression": "SET status_pk = :paid",
                    "ConditionExpression": "status_pk = :processing AND payout_period = :p",
                    "ExpressionAttributeValues": {
                        ":paid": S(PAID),
                        ":processing": S(PROCESSING),
                        ":p": S(run.period),
                    },
                }
            }

        for item in self._period_items(run.period):
            paid += 1
            if item["status_pk"]["S"] != PROCESSING:
                continue  # paid by an attempt cut short (and maybe clawed back since)
            chunk.append(item)
            if len(chunk) == PAYOUT_CHUNK:
                if self._fenced_writes(run.period, chunk, pay) < 0:
                    return -1
                chunk = []
        if chunk and self._fenced_writes(run.period, chunk, pay) < 0:
            return -1
        chain = {
            name: value
            for name, value in (
                ("previous_month_period", run.previous_month_period),
                ("previous_month_sha256", run.previous_month_sha256),
                ("previous_period", run.previous_period),
                ("previous_sha256", run.previous_sha256),
                ("#e", run.error),
            )
            if value is not None
        }
        self._uow.write(
            {
                "Update": {
                    "TableName": self._store.main,
                    "Key": self._key(run.period),
                    "UpdateExpression": "SET #s = :completed, referrer_count = :rc,"
                    " referral_count = :n, total_cents = :t, clawback_cents = :cb,"
                    " carried_forward_cents = :cf, report_key = :k,"
                    " report_sha256 = :sha, completed_at = :at"
                    + "".join(f", {name} = :{name.lstrip('#')}" for name in chain)
                    + " REMOVE lease_owner, lease_expires_at"
                    + ("" if run.error is not None else ", #e"),
                    "ConditionExpression": "lease_owner = :o AND #s = :running",
                    "ExpressionAttributeNames": {"#s": "status", "#e": "error"},
                    "ExpressionAttributeValues": {
                        ":completed": S(RunStatus.COMPLETED.value),
                        ":running": S(RunStatus.RUNNING.value),
                        ":o": S(owner),
                        ":rc": N(run.referrer_count),
                        ":n": N(run.referral_count),
                        ":t": N(run.total_cents),
                        ":cb": N(run.clawback_cents),
                        ":cf": N(run.carried_forward_cents),
                        ":k": S(run.report_key or ""),
                        ":sha": S(run.report_sha256 or ""),
                        ":at": N(to_micros(run.completed_at or run.started_at)),
                        **{f":{name.lstrip('#')}": S(value) for name, value in chain.items()},
                    },
                }
            }
        )
        self._uow.write(self._chain_head_write(run))
        return paid

    def lock_chain(self) -> None:
        """Read the chain head's version: `complete` conditions its commit on it, so of two
        completions that read the same head, the second to commit gets a Conflict."""
        head = self._store.get(self._store.main, _CHAIN_HEAD)
        self._chain_version = int(head["version"]["N"]) if head else 0

    def _chain_head_write(self, run: PayoutRun) -> dict[str, Any]:
        if self._chain_version is None:
            self.lock_chain()
        version = self._chain_version or 0
        values: Item = {
            ":next": N(version + 1),
            ":p": S(run.period),
            ":sha": S(run.report_sha256 or ""),
        }
        if version:
            values[":v"] = N(version)
        return {
            "Update": {
                "TableName": self._store.main,
                "Key": _CHAIN_HEAD,
                "UpdateExpression": "SET version = :next, head_period = :p, head_sha256 = :sha",
                "ConditionExpression": "version = :v" if version else "attribute_not_exists(pk)",
                "ExpressionAttributeValues": values,
            }
        }

    def note_publication(self, period: str, problem: str | None) -> None:
        if problem is None:
            update, values = "REMOVE #e", {":completed": S(RunStatus.COMPLETED.value)}
        else:
            update = "SET #e = :problem"
            values = {":completed": S(RunStatus.COMPLETED.value), ":problem": S(problem)}
        self._conditional_update(period, update, "#s = :completed", values)

    def fail(self, period: str, owner: str, error: str) -> None:
        self._conditional_update(
            period,
            "SET #s = :failed, #e = :error REMOVE lease_owner, lease_expires_at",
            "lease_owner = :o",
            {":failed": S(RunStatus.FAILED.value), ":error": S(error), ":o": S(owner)},
        )


class DynamoOutbox:
    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    def add(self, event: Event) -> None:
        payload = json.dumps(event.payload, sort_keys=True, separators=(",", ":"))
        if len(payload) > MAX_ITEM_BYTES:
            raise ValueError(f"event {event.id} is larger than a DynamoDB item may be")
        item: Item = {
            "id": S(event.id),
            "type": S(event.type),
            "payload": S(payload),
            "created_at": N(to_micros(event.created_at)),
            "status": S(event.status.value),
            "attempts": N(event.attempts),
        }
        if event.next_attempt_at is not None:
            item["next_attempt_at"] = N(to_micros(event.next_attempt_at))
            if event.status is EventStatus.PENDING:
                item["due_pk"] = S("PENDING")
                item["due_at"] = item["next_attempt_at"]
        if event.last_error is not None:
            item["last_error"] = S(event.last_error)
        self._uow.put(self._store.outbox, item, keys=("id",))

    def get(self, event_id: str) -> Event | None:
        item = self._store.get(self._store.outbox, {"id": S(event_id)})
        return _event(item) if item else None

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        claimed = []
        for item in self._store.query(
            limit=limit,
            TableName=self._store.outbox,
            IndexName="due",
            KeyConditionExpression="due_pk = :p AND due_at <= :now",
            ExpressionAttributeValues={":p": S("PENDING"), ":now": N(to_micros(now))},
        ):
            try:
                updated = self._store.client.update_item(
                    TableName=self._store.outbox,
                    Key={"id": item["id"]},
                    UpdateExpression="SET due_at = :until, next_attempt_at = :until",
                    ConditionExpression="#s = :pending AND due_at <= :now",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":until": N(to_micros(until)),
                        ":pending": S(EventStatus.PENDING.value),
                        ":now": N(to_micros(now)),
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # another dispatcher claimed it, or it was delivered meanwhile
                raise
            claimed.append(_event(updated["Attributes"]))
        return sorted(claimed, key=lambda e: e.id)

    def _update(self, event_id: str, expression: str, values: Item) -> None:
        update = {
            "TableName": self._store.outbox,
            "Key": {"id": S(event_id)},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if "#s" in expression:  # DynamoDB refuses unused names
            update["ExpressionAttributeNames"] = {"#s": "status"}
        self._uow.write({"Update": update})

    def delivered(self, event_ids: Sequence[str]) -> None:
        # One update per event: a transaction would fail as a whole on any one of them.
        for event_id in event_ids:
            self._update(
                event_id,
                "SET #s = :delivered ADD attempts :one"
                " REMOVE due_pk, due_at, next_attempt_at, last_error",
                {":delivered": S(EventStatus.DELIVERED.value), ":one": N(1)},
            )

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        at = N(to_micros(next_attempt_at))
        values: Item = {":error": S(error), ":at": at, ":one": N(1)}
        if dead:
            values[":dead"] = S(EventStatus.DEAD.value)
            expression = "SET #s = :dead, last_error = :error, next_attempt_at = :at"
            expression += " ADD attempts :one REMOVE due_pk, due_at"
        else:
            values[":due"] = S("PENDING")
            expression = "SET last_error = :error, next_attempt_at = :at, due_at = :at,"
            expression += " due_pk = :due ADD attempts :one"
        self._update(event_id, expression, values)

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        statuses = [status] if status is not None else list(EventStatus)
        events = [
            _event(item)
            for s in statuses
            for item in self._store.query(
                limit=limit,
                TableName=self._store.outbox,
                IndexName="by_status",
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": S(s.value)},
                ScanIndexForward=False,
            )
        ]
        return sorted(events, key=lambda e: e.id, reverse=True)[:limit]

    def requeue(self, event_id: str, now: datetime) -> bool:
        try:
            self._store.client.update_item(
                TableName=self._store.outbox,
                Key={"id": S(event_id)},
                UpdateExpression="SET #s = :pending, attempts = :zero, next_attempt_at = :now,"
                " due_at = :now, due_pk = :due",
                ConditionExpression="#s = :dead",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":pending": S(EventStatus.PENDING.value),
                    ":dead": S(EventStatus.DEAD.value),
                    ":zero": N(0),
                    ":now": N(to_micros(now)),
                    ":due": S("PENDING"),
                },
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def backlog(self) -> int:
        return self._store.count(
            TableName=self._store.outbox,
            IndexName="due",
            KeyConditionExpression="due_pk = :p",
            ExpressionAttributeValues={":p": S("PENDING")},
        )

    def prune_delivered(self, before: datetime, limit: int) -> int:
        """Deletes at once, not at commit, each event on its own and on condition that it
        is still delivered: a transaction would fail as a whole on one that a concurrent
        pruner (another server's worker) deleted first."""
        pruned = 0
        for item in self._store.query(
            limit=limit,
            TableName=self._store.outbox,
            IndexName="by_status",
            KeyConditionExpression="#s = :delivered AND id < :first",
            FilterExpression="created_at < :before",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":delivered": S(EventStatus.DELIVERED.value),
                ":first": S(first_id_at(before)),
                ":before": N(to_micros(before)),
            },
        ):
            try:
                self._store.client.delete_item(
                    TableName=self._store.outbox,
                    Key={"id": item["id"]},
                    ConditionExpression="#s = :delivered",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":delivered": S(EventStatus.DELIVERED.value)},
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue  # deleted meanwhile: the index lags the table
                raise
            pruned += 1
        return pruned

    def discard(self, event_id: str) -> bool:
        event = self.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        # At commit, with whatever else the unit of work writes (its audit entry); a
        # requeue or a discard elsewhere meanwhile makes the commit a Conflict.
        self._uow.write(
            {
                "Delete": {
                    "TableName": self._store.outbox,
                    "Key": {"id": S(event_id)},
                    "ConditionExpression": "#s = :dead",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":dead": S(EventStatus.DEAD.value)},
                }
            }
        )
        return True


class DynamoAudit:
    """The admin audit log: one partition `AUDIT`, sorted by entry id (a ULID: time order).

    Admin actions are rare (reviews, reversals, payout runs), far below one
    partition's write limit, so a single partition queried newest first is enough
    and needs no index.
    """

    def __init__(self, uow: "DynamoUnitOfWork") -> None:
        self._uow = uow
        self._store = uow.store

    def add(self, entry: AuditEntry) -> None:
        item: Item = {
            "pk": S("AUDIT"),
            "sk": S(entry.id),
            "at": N(to_micros(entry.at)),
            "actor": S(entry.actor),
            "action": S(entry.action),
            "target": S(entry.target),
        }
        if entry.reason is not None:
            item["reason"] = S(entry.reason)
        self._uow.put(self._store.main, item)  # an existing id makes the commit a Conflict

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        values: Item = {":a": S("AUDIT")}
        condition = "pk = :a"
        if before_id is not None:
            condition += " AND sk < :before"
            values[":before"] = S(before_id)
        items = self._store.query(
            limit=limit,
            TableName=self._store.main,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        return [_audit(item) for item in items]


class DynamoUnitOfWork:
    referrers: DynamoReferrers
    referrals: DynamoReferrals
    rewards: DynamoRewards
    conversions: DynamoConversions
    api_keys: DynamoApiKeys
    sessions: DynamoSessions
    secrets: DynamoSecrets
    payouts: DynamoPayouts
    outbox: DynamoOutbox
    audit: DynamoAudit
    stats: DynamoStats

    def __init__(self, store: DynamoStore) -> None:
        self.store = store

    def __enter__(self) -> Self:
        self._writes: list[dict[str, Any]] = []
        self._keys: set[tuple[str, str]] = set()
        self.fence: tuple[str, str] | None = None  # (period, owner) after a lease renewal
        self.referrers = DynamoReferrers(self)
        self.referrals = DynamoReferrals(self)
        self.rewards = DynamoRewards(self)
        self.conversions = DynamoConversions(self)
        self.api_keys = DynamoApiKeys(self)
        self.sessions = DynamoSessions(self)
        self.secrets = DynamoSecrets(self)
        self.payouts = DynamoPayouts(self)
        self.outbox = DynamoOutbox(self)
        self.audit = DynamoAudit(self)
        self.stats = DynamoStats(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._writes = []  # uncommitted writes are simply never sent

    def touches(self, table: str, key: Item) -> bool:
        return _item_key(table, key) in self._keys

    def write(self, operation: dict[str, Any]) -> None:
        body = next(iter(operation.values()))
        self._keys.add(_item_key(body["TableName"], body["Key"]))
        self._writes.append(operation)

    def unwrite(self, operation: dict[str, Any]) -> None:
        """Takes back an operation given to `write`, as if it never had been."""
        body = next(iter(operation.values()))
        self._keys.discard(_item_key(body["TableName"], body["Key"]))
        self._writes = [queued for queued in self._writes if queued is not operation]

    def put(self, table: str, item: Item, keys: tuple[str, ...] = ("pk", "sk")) -> None:
        """A Put that creates the item; an existing one makes the commit a Conflict."""
        self._keys.add(_item_key(table, {name: item[name] for name in keys}))
        condition = f"attribute_not_exists({keys[0]})"
        self._writes.append(
            {"Put": {"TableName": table, "Item": item, "ConditionExpression": condition}}
        )

    def commit(self) -> None:
        if self._writes:
            self.store.transact(self._writes)
        self._writes = []


def _item_key(table: str, key: Item) -> tuple[str, str]:
    """An item's identity within a unit of work: its table and its key, hashable."""
    return (table, json.dumps(key, sort_keys=True))


def _aggregate(entries: Iterable[tuple[str, LineKind, int]]) -> Iterator[PayoutLine]:
    """Per-user lines of (user id, line kind, cents) that arrive grouped by user.

    A user's kinds may interleave (the index orders a user's items by id): both
    totals are kept until the user changes, then the reward line goes first.
    """
    for user, group in groupby(entries, key=lambda entry: entry[0]):
        totals: dict[LineKind, list[int]] = {}
        for _, kind, amount in group:
            line = totals.setdefault(kind, [0, 0])
            line[0] += 1
            line[1] += amount
        for kind in LineKind:
            if kind in totals:
                count, cents = totals[kind]
                yield PayoutLine(user, count, cents, kind)


def _referral_item(r: Referral) -> Item:
    item: Item = {
        **_referral_key(r.referee_id),
        "kind": S("REFERRAL"),
        "id": S(r.id),
        "referee_id": S(r.referee_id),
        "referrer_id": S(r.referrer_id),
        "referrer_pk": S(_referrer_pk(r.referrer_id)),
        "code": S(r.code),
        "ordinal": N(r.ordinal),
        "reward_cents": N(r.reward_cents),
        "status_pk": S(r.status.value),
        "created_at": N(to_micros(r.created_at)),
    }
    if r.email is not None:
        item["email"] = S(r.email)
    if r.receipt is not None:
        item["receipt"] = S(_receipt_json(r.receipt))
    _set_payout_attributes(item, r.referrer_id, r)
    return item


def _entry_item(e: Reward) -> Item:
    item: Item = {
        "pk": S(_entry_pk(e.referral_id)),
        "sk": S(f"REWARD#{e.id}"),
        "id": S(e.id),
        "referral_id": S(e.referral_id),
        "user_id": S(e.user_id),
        # The beneficiary's partition of `by_referrer_id`, for their earnings.
        "referrer_pk": S(_referrer_pk(e.user_id)),
        # Not `kind`: that attribute is the partition key of the `by_id` index of referrals.
        "entry_kind": S(e.kind.value),
        "reward_cents": N(e.cents),
        "status_pk": S(e.status.value),
        "created_at": N(to_micros(e.created_at)),
    }
    _set_payout_attributes(item, e.user_id, e)
    return item


def _set_payout_attributes(item: Item, payee: str, entry: Referral | Reward) -> None:
    """What the payout steps read and write, alike on referral items and entries."""
    if entry.hold:  # absent means no hold, as on items written before holds existed
        item["hold_micros"] = N(entry.hold // ONE_MICROSECOND)
    if entry.note is not None:
        item["note"] = S(entry.note)
    if entry.status is ReferralStatus.PENDING:
        item["unpaid_pk"] = S("UNPAID")
        item["unpaid_sk"] = S(_unpaid_sk(entry.id, to_micros(entry.payable_at)))
    if entry.payout_period is not None:
        item["payout_period"] = S(entry.payout_period)
        item["period_pk"] = S(entry.payout_period)
        item["period_sk"] = S(f"{payee}#{entry.id}")


def _receipt_json(receipt: Receipt) -> str:
    return json.dumps(receipt.to_dict(), sort_keys=True, separators=(",", ":"))


def _hold(item: Item) -> timedelta:
    micros = int(item["hold_micros"]["N"]) if "hold_micros" in item else 0
    return ONE_MICROSECOND * micros


def _conversion(item: Item) -> Conversion:
    return Conversion(
        external_id=item["external_id"]["S"],
        user_id=item["user_id"]["S"],
        event=item["event"]["S"],
        value_cents=int(item["value_cents"]["N"]) if "value_cents" in item else None,
        created_at=from_micros(int(item["created_at"]["N"])),
        referral_id=_opt_s(item, "referral_id"),
        awaits_signup="awaits_signup" in item,
    )


def _referrer(item: Item) -> Referrer:
    return Referrer(
        user_id=item["user_id"]["S"],
        code=item["code"]["S"],
        email=_opt_s(item, "email"),
        referral_count=int(item["referral_count"]["N"]),
        created_at=from_micros(int(item["created_at"]["N"])),
        ip_hash=_opt_s(item, "ip_hash"),
        device_hash=_opt_s(item, "device_hash"),
        cap_lifetime_cents=int(item.get("cap_lifetime_cents", {"N": "0"})["N"]),
        cap_month=_opt_s(item, "cap_month"),
        cap_month_cents=int(item.get("cap_month_cents", {"N": "0"})["N"]),
    )


def _referral(item: Item) -> Referral:
    return Referral(
        id=item["id"]["S"],
        referee_id=item["referee_id"]["S"],
        referrer_id=item["referrer_id"]["S"],
        code=item["code"]["S"],
        email=_opt_s(item, "email"),
        ordinal=int(item["ordinal"]["N"]),
        reward_cents=int(item["reward_cents"]["N"]),
        status=ReferralStatus(item["status_pk"]["S"]),
        created_at=from_micros(int(item["created_at"]["N"])),
        payout_period=_opt_s(item, "payout_period"),
        hold=_hold(item),
        receipt=Receipt.from_dict(json.loads(item["receipt"]["S"])) if "receipt" in item else None,
        note=_opt_s(item, "note"),
    )


def _reward(item: Item) -> Reward:
    return Reward(
        id=item["id"]["S"],
        referral_id=item["referral_id"]["S"],
        user_id=item["user_id"]["S"],
        kind=RewardKind(item["entry_kind"]["S"]),
        cents=int(item["reward_cents"]["N"]),
        status=ReferralStatus(item["status_pk"]["S"]),
        created_at=from_micros(int(item["created_at"]["N"])),
        hold=_hold(item),
        payout_period=_opt_s(item, "payout_period"),
        note=_opt_s(item, "note"),
    )


def _api_key(item: Item) -> ApiKey:
    return ApiKey(
        item["id"]["S"],
        Role(item["role"]["S"]),
        item["sk"]["S"],
        from_micros(int(item["created_at"]["N"])),
        name=_opt_s(item, "key_name"),
        expires_at=_opt_time(item, "expires_at"),
        revoked_at=_opt_time(item, "revoked_at"),
        last_used_at=_opt_time(item, "last_used_at"),
    )


def _audit(item: Item) -> AuditEntry:
    return AuditEntry(
        id=item["sk"]["S"],
        at=from_micros(int(item["at"]["N"])),
        actor=item["actor"]["S"],
        action=item["action"]["S"],
        target=item["target"]["S"],
        reason=_opt_s(item, "reason"),
    )


# The head of the report chain: the run completed last, and a version that every
# completion moves on in its commit (see `DynamoPayouts.lock_chain`).
_CHAIN_HEAD: Item = {"pk": S("CHAIN"), "sk": S("HEAD")}


def _run(item: Item) -> PayoutRun:
    def count(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    return PayoutRun(
        period=item["sk"]["S"],
        status=RunStatus(item["status"]["S"]),
        cutoff=from_micros(int(item["cutoff"]["N"])),
        started_at=from_micros(int(item["started_at"]["N"])),
        lease_owner=_opt_s(item, "lease_owner"),
        lease_expires_at=_opt_time(item, "lease_expires_at"),
        referrer_count=count("referrer_count"),
        referral_count=count("referral_count"),
        total_cents=count("total_cents"),
        report_key=_opt_s(item, "report_key"),
        report_sha256=_opt_s(item, "report_sha256"),
        previous_month_period=_opt_s(item, "previous_month_period"),
        previous_month_sha256=_opt_s(item, "previous_month_sha256"),
        previous_period=_opt_s(item, "previous_period"),
        previous_sha256=_opt_s(item, "previous_sha256"),
        completed_at=_opt_time(item, "completed_at"),
        error=_opt_s(item, "error"),
        clawback_cents=count("clawback_cents"),
        carried_forward_cents=count("carried_forward_cents"),
    )


def _event(item: Item) -> Event:
    return Event(
        id=item["id"]["S"],
        type=item["type"]["S"],
        payload=json.loads(item["payload"]["S"]),
        created_at=from_micros(int(item["created_at"]["N"])),
        status=EventStatus(item["status"]["S"]),
        attempts=int(item["attempts"]["N"]),
        next_attempt_at=_opt_time(item, "next_attempt_at"),
        last_error=_opt_s(item, "last_error"),
    )
