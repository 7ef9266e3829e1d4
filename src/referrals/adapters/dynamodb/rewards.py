"""Entries besides a referral's own reward, and conversions, on DynamoDB.

An entry (a referee's reward, a clawback) is `REFERRAL#<referral_id>` /
`REWARD#<id>`, with an id claim `REWARD#<id>` / `REWARD`. It carries the payout
attributes of a referral item (status, the sparse `by_period` keys,
the beneficiary's `referrer_pk`, `reward_cents`), so the payout steps walk
referrals and entries alike.

A conversion is `CONVERSION#<external_id>` / `CONVERSION`: the key records each
external id once. A user's signup slot in a program (`items.signup_slot_key`) is created once.
Both are created by the conditional Put of the commit, so a second one is a Conflict.
"""

import itertools
from collections.abc import Collection, Sequence
from dataclasses import replace

from boto3.dynamodb.conditions import Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values
from referrals.adapters.dynamodb.referrals import status_update
from referrals.adapters.dynamodb.run_states import RunStates
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Conversion,
    ReferralStatus,
    Reward,
    RewardKind,
    SignupSlot,
)


class DynamoRewards:
    def __init__(self, tables: Tables, tx: Transaction, runs: RunStates) -> None:
        self._tables = tables
        self._tx = tx
        self._runs = runs

    def _reward(self, item: Values) -> Reward:
        return items.reward(item, self._runs.status(item))

    def add(self, reward: Reward) -> None:
        self._tx.create(self._tables.main, items.entry_item(reward))
        claim = {**items.reward_claim_key(reward.id), "referral_id": reward.referral_id}
        self._tx.claim_id(self._tables.main, claim)  # before the transaction (1 WCU, not 2)

    def _item(self, reward_id: str) -> tuple[Values, Values] | None:
        claim = self._tables.get(self._tables.main, items.reward_claim_key(reward_id))
        if claim is None:
            return None
        key = items.entry_key(claim["referral_id"], reward_id)
        item = self._tables.get(self._tables.main, key)
        return (key, item) if item else None

    def get(self, reward_id: str) -> Reward | None:
        found = self._item(reward_id)
        return self._reward(found[1]) if found else None

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        found = self._tables.query(
            self._tables.main,
            Key("pk").eq(items.entry_pk(referral_id)) & Key("sk").begins_with("REWARD#"),
            consistent=True,
        )
        return [self._reward(item) for item in found]  # sk order: by id

    def held_shares(self, after_id: str | None, limit: int) -> Sequence[Reward]:
        # The partition of held in `by_status`: referrals and entries, in id order.
        key = Key("status_pk").eq(ReferralStatus.HELD.value)
        if after_id is not None:
            key &= Key("id").gt(after_id)
        shares = (
            self._reward(item)
            for item in self._tables.query(self._tables.main, key, index="by_status")
            if item.get("entry_kind") == RewardKind.SHARE.value
        )
        return list(itertools.islice(shares, limit))

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
        current = self._reward(item)
        if current.status not in allowed:
            return None
        if self._tx.touches(self._tables.main, key):
            raise ValueError(f"entry {reward_id} is already written in this unit of work")
        moved = replace(current, status=to, note=note)
        self._tx.write(status_update(self._tables.main, key, current.status, moved, note=note))
        return moved


class DynamoConversions:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, conversion: Conversion) -> None:
        # Recorded before: the commit is a Conflict.
        self._tx.create(self._tables.main, items.conversion_item(conversion))

    def get(self, external_id: str) -> Conversion | None:
        item = self._tables.get(self._tables.main, items.conversion_key(external_id))
        return items.conversion(item) if item else None

    def signup_slot(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> SignupSlot | None:
        item = self._tables.get(self._tables.main, items.signup_slot_key(user_id, program))
        return SignupSlot(user_id, item.get("external_id"), program) if item else None

    def take_signup_slot(self, slot: SignupSlot) -> None:
        key = items.signup_slot_key(slot.user_id, slot.program_id)
        item = {**key, "external_id": slot.external_id}
        self._tx.create(self._tables.main, item)  # taken meanwhile: the commit is a Conflict
