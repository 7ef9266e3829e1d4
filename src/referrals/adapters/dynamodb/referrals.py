"""Referrals on DynamoDB: one item per referee (`REFEREE#<referee>`), which is also the
claim that a user is referred once, plus an id claim (`REFID#<id>`) that makes ids
unique and finds the item by id with consistent reads.

A transition is an Update conditioned on the state read, so a concurrent change
that commits first makes this commit a Conflict, and the retry reads the new state.
"""

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values, Write, check, update
from referrals.adapters.dynamodb.referrers import DynamoReferrers
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import to_micros
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Receipt,
    Referral,
    ReferralStatus,
    Reward,
    SignupParties,
)


def status_update(
    table: str, key: Values, read: ReferralStatus, moved: Referral | Reward, **changes: Any
) -> Write:
    """The write that moves a referral's reward or an entry from the state it was `read`
    in to its state in `moved`, conditioned on the first, with any other attributes it
    `changes` (None removes one)."""
    # Only a pending reward is in the sparse `unpaid` index: one moved out of
    # pending (held, rejected, reversed) leaves it, one approved back into it
    # returns at its payable time, so the next run whose cutoff is later pays it.
    # The period attributes stay: a paid reward clawed back later is still in the
    # lines of the run that paid it, whose report must render the same again.
    pending = moved.status is ReferralStatus.PENDING
    payable = to_micros(moved.payable_at)
    unpaid = {
        "unpaid_pk": items.UNPAID if pending else None,
        "unpaid_sk": items.unpaid_sk(moved.id, payable) if pending else None,
    }
    return update(
        table,
        key,
        set={"status_pk": moved.status.value, **changes, **unpaid},
        condition=Attr("status_pk").eq(read.value),
    )


class DynamoReferrals:
    def __init__(self, tables: Tables, tx: Transaction, referrers: DynamoReferrers) -> None:
        self._tables = tables
        self._tx = tx
        self._referrers = referrers

    def get(self, referral_id: str) -> Referral | None:
        _, current = self._current(referral_id)
        return current

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        item = self._tables.get(self._tables.main, items.referral_key(referee_id, program))
        return items.referral(item) if item else None

    def by_email(self, email: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        # KEYS_ONLY: the index gives the item's key, the item is read consistently.
        match = Key("email_key").eq(items.email_key(email, program))
        for keys in self._tables.query(self._tables.main, match, index="by_referee_email", limit=1):
            item = self._tables.get(self._tables.main, {"pk": keys["pk"], "sk": keys["sk"]})
            return items.referral(item) if item else None
        return None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        referrer = self._referrers.by_code(code)
        if referrer is None:
            return SignupParties(None, None, None)
        program = referrer.program_id
        return SignupParties(
            self._referrers.increment_referral_count(referrer.user_id, program=program),
            self.by_referee(referee_id, program=program),
            self._referrers.get(referee_id, program=program),
        )

    def add(self, referral: Referral) -> None:
        main = self._tables.main
        self._tx.create(main, items.referral_item(referral))
        claim = {
            **items.referral_claim_key(referral.id),
            "referee_id": referral.referee_id,
            "program_id": referral.program_id,
        }
        self._tx.create(main, claim)  # a taken id makes the commit a Conflict
        referrer_key = items.referrer_key(referral.referrer_id, referral.program_id)
        # A transaction may touch an item once: the signup's counter update already
        # proves the referrer exists; otherwise check it explicitly.
        if not self._tx.touches(main, referrer_key):
            self._tx.write(check(main, referrer_key, Attr("pk").exists()))

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
        moved = replace(current, status=to, note=note)
        self._tx.write(status_update(self._tables.main, key, current.status, moved, note=note))
        return moved

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
        # An awaiting reward is in no payout index; a pending one enters `unpaid` at
        # the time its new hold ends.
        self._tx.write(
            status_update(
                self._tables.main,
                key,
                ReferralStatus.AWAITING,
                changed,
                receipt=items.receipt_json(receipt),
                reward_cents=reward_cents,
                hold_micros=hold // items.ONE_MICROSECOND if hold else None,
            )
        )
        return changed

    def _current(self, referral_id: str) -> tuple[Values | None, Referral | None]:
        # The id claim finds the item's key (the referee never changes); the state is
        # read from the base table, both strongly consistent, so a referral is found
        # the moment its signup commits.
        key = self._key(referral_id)
        item = self._tables.get(self._tables.main, key) if key else None
        if key is None or item is None or item["id"] != referral_id:
            return None, None
        return key, items.referral(item)

    def _key(self, referral_id: str) -> Values | None:
        claim = self._tables.get(self._tables.main, items.referral_claim_key(referral_id))
        if claim is not None:
            return items.referral_key(claim["referee_id"], items.program_of(claim))
        # A referral written before id claims existed has none: its key comes from
        # the `by_id` index, eventually consistent, which such an old item is in.
        indexed = self._tables.query(
            self._tables.main,
            Key("kind").eq("REFERRAL") & Key("id").eq(referral_id),
            index="by_id",
            project="referee_id",
            limit=1,
        )
        # Such an item is from before programs too: the default program's.
        return next(
            (items.referral_key(item["referee_id"], DEFAULT_PROGRAM) for item in indexed), None
        )

    def _check_untouched(self, key: Values, referral_id: str) -> None:
        if self._tx.touches(self._tables.main, key):
            # A transaction may write an item once (DynamoDB refuses a second operation).
            raise ValueError(f"referral {referral_id} is already written in this unit of work")

    def for_referrer(
        self,
        referrer_id: str,
        after_ordinal: int | None,
        limit: int,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> Sequence[Referral]:
        key = Key("referrer_pk").eq(items.referrer_pk(referrer_id, program))
        if after_ordinal is not None:
            key &= Key("ordinal").gt(after_ordinal)
        found = self._tables.query(self._tables.main, key, index="by_referrer", limit=limit)
        return [items.referral(item) for item in found]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
        *,
        program: str | None = None,
    ) -> Sequence[Referral]:
        if referrer_id is not None:
            member = items.referrer_pk(referrer_id, program or DEFAULT_PROGRAM)
            index, key = "by_referrer_id", Key("referrer_pk").eq(member)
        elif status is not None:
            index, key = "by_status", Key("status_pk").eq(status.value)
        else:
            index, key = "by_id", Key("kind").eq("REFERRAL")
        if after_id is not None:
            key &= Key("id").gt(after_id)
        rows: list[Referral] = []
        for item in self._tables.query(self._tables.main, key, index=index):
            if item.get("kind") != "REFERRAL":
                continue  # an entry paid to the user, in the same indexes
            referral = items.referral(item)
            if (status is None or referral.status is status) and (
                program is None or referral.program_id == program
            ):
                rows.append(referral)
                if len(rows) == limit:
                    break
        return rows
