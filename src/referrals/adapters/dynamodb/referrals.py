"""Referrals on DynamoDB: one item per referee (`REFEREE#<referee>`), which is also the
claim that a user is referred once, plus an id claim (`REFID#<id>`) that makes ids
unique and finds the item by id with consistent reads. The claim is put just before
the signup's transaction (transaction.claim_id): one left by a transaction that
failed names a referee whose item has another id, or none, and reads as nothing.

A transition is an Update conditioned on the state read, so a concurrent change
that commits first makes this commit a Conflict, and the retry reads the new state.
"""

import heapq
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values, Write, all_of, check, update
from referrals.adapters.dynamodb.referrers import DynamoReferrers
from referrals.adapters.dynamodb.run_states import RunStates, paid_with_run_filter, stored_as
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Receipt,
    Referral,
    ReferralStatus,
    Reward,
    SignupParties,
)

REFERRAL_SK = "REFERRAL"  # a referral item's sort key, `REFERRAL[#<program>]` (items.referral_key)


def status_update(
    table: str, key: Values, read: ReferralStatus, moved: Referral | Reward, **changes: Any
) -> Write:
    """The write that moves a referral's reward or an entry from the state it was `read`
    in to its state in `moved`, conditioned on the first, with any other attributes it
    `changes` (None removes one)."""
    # A pending reward is found by payouts in the `by_status` partition of pending, so
    # one approved back into pending is paid by the next run whose cutoff is later. The
    # period attributes stay: a paid reward clawed back later is still in the lines of
    # the run that paid it, whose report must render the same again.
    return update(
        table,
        key,
        set={"status_pk": moved.status.value, **changes},
        condition=stored_as(read),
    )


class DynamoReferrals:
    def __init__(
        self, tables: Tables, tx: Transaction, referrers: DynamoReferrers, runs: RunStates
    ) -> None:
        self._tables = tables
        self._tx = tx
        self._referrers = referrers
        self._runs = runs

    def _referral(self, item: Values) -> Referral:
        return items.referral(item, self._runs.status(item))

    def get(self, referral_id: str) -> Referral | None:
        _, current = self._current(referral_id)
        return current

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        item = self._tables.get(self._tables.main, items.referral_key(referee_id, program))
        return self._referral(item) if item else None

    def by_email(self, email: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        # KEYS_ONLY: the index gives the item's key, the item is read consistently.
        match = Key("email_key").eq(items.email_key(email, program))
        for keys in self._tables.query(self._tables.main, match, index="by_referee_email", limit=1):
            item = self._tables.get(self._tables.main, {"pk": keys["pk"], "sk": keys["sk"]})
            return self._referral(item) if item else None
        return None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        referrer = self._referrers.by_code(code)
        if referrer is None:
            return SignupParties(None, None, None)
        program = referrer.program_id
        self._referrers.read_as(referrer)  # the count goes up from this read: 1 RCU, not 2
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
        self._tx.claim_id(main, claim)  # on its own, before the transaction (1 WCU, not 2)
        # A referee this signup enrolls is enrolled just before it too (1 WCU a Put, not 2).
        self._referrers.enroll_first(referral.referee_id, program=referral.program_id)
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
        # An awaiting reward is not payable; a pending one is, once its new hold ends.
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
        return key, self._referral(item)

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
        # Keys only: the page's items are read by key, strongly consistent.
        found = self._tables.query(self._tables.main, key, index="by_referrer_keys", limit=limit)
        return [self._referral(item) for item in self._tables.hydrate(self._tables.main, found)]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
        *,
        program: str | None = None,
    ) -> Sequence[Referral]:
        if referrer_id is None and status is ReferralStatus.PROCESSING:
            return self._processing(after_id, limit, program)
        if referrer_id is not None:
            member = items.referrer_pk(referrer_id, program or DEFAULT_PROGRAM)
            index, key = "by_referrer_id_keys", Key("referrer_pk").eq(member)
        elif status is not None:
            index, key = "by_status", Key("status_pk").eq(status.value)
        else:
            index, key = "by_id", Key("kind").eq("REFERRAL")
        after = Key("id").gt(after_id) if after_id is not None else None
        main = self._tables.main
        found: Iterable[Values] = self._tables.query(main, all_of(key, after), index=index)
        if index == "by_status" and status is ReferralStatus.PAID:
            # Paid with a run (run_states) is out of `by_status`: read from `by_id` beside
            # the partition of paid, both in id order; those of a run not completed yet
            # read as processing and are skipped below.
            with_run = self._tables.query(
                main,
                all_of(Key("kind").eq("REFERRAL"), after),
                index="by_id",
                filter=paid_with_run_filter(),
            )
            found = heapq.merge(found, with_run, key=lambda item: str(item["id"]))
        if index == "by_referrer_id_keys":
            # Keys only: skip the entries paid to the user by their key, read the rest.
            referrals = (i for i in found if i["sk"].startswith(REFERRAL_SK))
            found = self._tables.hydrate(self._tables.main, referrals, chunk=limit)
        rows: list[Referral] = []
        for item in found:
            if item.get("kind") != "REFERRAL":
                continue  # an entry paid to the user, in the same indexes
            referral = self._referral(item)
            if (status is None or referral.status is status) and (
                program is None or referral.program_id == program
            ):
                rows.append(referral)
                if len(rows) == limit:
                    break
        return rows

    def _processing(self, after_id: str | None, limit: int, program: str | None) -> list[Referral]:
        """Referrals in runs that have not completed, in id order: read from those runs'
        `by_period` partitions (by user paid), keeping the first `limit` by id."""
        found = (
            item
            for item in self._runs.in_running_runs()
            if item.get("kind") == "REFERRAL"
            and (after_id is None or item["id"] > after_id)
            and (program is None or items.program_of(item) == program)
        )
        first = heapq.nsmallest(limit, found, key=lambda item: str(item["id"]))
        return [items.referral(item, ReferralStatus.PROCESSING) for item in first]
