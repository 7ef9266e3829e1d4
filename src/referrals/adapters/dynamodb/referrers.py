"""Referrers on DynamoDB: a profile item per user and a claim item per code.

A signup counts the referral on the profile optimistically: the update is
conditioned on the counters as read (strongly consistent), so of two concurrent
signups for one referrer one commits and the other gets a Conflict and retries
with the new count. Ordinals come out exact, with no lock to hold.

A referee enrolled by their own signup is not part of the signup's transaction:
its code claim, then its profile, are put just before it (`enroll_first`), at 1 WCU
each rather than 2. What that can leave behind is harmless. A code claim put before
a profile that then fails names a user whose profile has another code: `by_code`
reads it as nothing. A profile put before a transaction that then fails (a lost
race, a crash) is a user enrolled as a referrer but not referred yet: the retried
signup finds them enrolled, refers them and answers with their code.
"""

from dataclasses import replace
from datetime import datetime

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Write, all_of, update
from referrals.adapters.dynamodb.run_states import STATE_ATTRIBUTES, RunStates
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import to_micros
from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import DEFAULT_PROGRAM, Earnings, LineKind, Referrer


class DynamoReferrers:
    def __init__(self, tables: Tables, tx: Transaction, runs: RunStates) -> None:
        self._tables = tables
        self._tx = tx
        self._runs = runs
        # Per referrer (program, user): the profile as read and as this unit of work
        # will write it, and the Update queued for it (a transaction writes an item once).
        self._profiles: dict[tuple[str, str], tuple[Referrer, Referrer]] = {}
        self._profile_writes: dict[tuple[str, str], Write] = {}
        # Per referrer (program, user) added by this unit of work: its code claim and
        # profile creations, in the order they may be put before the transaction.
        self._added: dict[tuple[str, str], tuple[Write, Write]] = {}

    def get(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer | None:
        item = self._tables.get(self._tables.main, items.referrer_key(user_id, program))
        return items.referrer(item) if item else None

    def by_code(self, code: str) -> Referrer | None:
        claim = self._tables.get(self._tables.main, items.code_key(code))
        if claim is None:
            return None
        found = self.get(claim["user_id"], program=items.program_of(claim))
        # A claim whose user has another code was left by an enrollment that lost
        # (enroll_first): the code is nobody's.
        if found is None or normalize_code(found.code) != normalize_code(code):
            return None
        return found

    def add(self, referrer: Referrer) -> None:
        claim = {
            **items.code_key(referrer.code),
            "user_id": referrer.user_id,
            "program_id": referrer.program_id,
        }
        claimed = self._tx.create(self._tables.main, claim)
        profile = self._tx.create(self._tables.main, items.referrer_item(referrer))
        self._added[(referrer.program_id, referrer.user_id)] = (claimed, profile)

    def enroll_first(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        """If this unit of work enrolls `user_id` (`add`), put the enrollment on its own
        before the transaction instead of in it: for a referee enrolled by the signup
        that refers them, whose retry keeps what a failed commit left (module
        docstring). The code claim goes first, so a profile never names a code
        another user holds."""
        for write in self._added.pop((program, user_id), ()):
            self._tx.send_first(write)

    def increment_referral_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer:
        _, pending = self._profile(program, user_id)
        updated = replace(pending, referral_count=pending.referral_count + 1)
        self._update_profile(updated)
        return updated

    def give_back_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        _, pending = self._profile(program, user_id)
        self._update_profile(replace(pending, referral_count=pending.referral_count - 1))

    def add_earned(
        self,
        user_id: str,
        month: str,
        cents: int,
        seen: Referrer | None = None,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> None:
        read, pending = self._profile(program, user_id)
        if seen is not None and seen.cap_counters != read.cap_counters:
            raise Conflict("the referrer's earnings changed meanwhile")
        self._update_profile(pending.counting(month, cents))

    def read_as(self, profile: Referrer) -> None:
        """Take `profile`, just read consistently by this unit of work, as the profile its
        updates are conditioned on, rather than reading it again: a change since makes
        the commit a Conflict all the same."""
        self._profiles.setdefault((profile.program_id, profile.user_id), (profile, profile))

    def _profile(self, program: str, user_id: str) -> tuple[Referrer, Referrer]:
        """The profile as read (consistently) and as this unit of work will write it."""
        member = (program, user_id)
        if member not in self._profiles:
            current = self.get(user_id, program=program)
            if current is None:
                raise Conflict(f"no referrer {user_id!r} in {program!r}")
            self._profiles[member] = (current, current)
        return self._profiles[member]

    def _update_profile(self, updated: Referrer) -> None:
        """One Update of the profile per unit of work, rebuilt as the signup or review adds
        to it, conditioned on what was read."""
        member = (updated.program_id, updated.user_id)
        read, _ = self._profiles[member]
        self._profiles[member] = (read, updated)
        queued = self._profile_writes.pop(member, None)
        if queued is not None:
            self._tx.unwrite(queued)
        changes: dict[str, object] = {}
        conditions: list[ConditionBase] = []
        if updated.referral_count != read.referral_count:
            changes["referral_count"] = updated.referral_count
            conditions.append(Attr("referral_count").eq(read.referral_count))
        if updated.cap_counters != read.cap_counters:
            changes["cap_lifetime_cents"] = updated.cap_lifetime_cents
            changes["cap_month_cents"] = updated.cap_month_cents
            if updated.cap_month is not None:
                changes["cap_month"] = updated.cap_month
            conditions.append(_unchanged_caps(read))
        if not changes:
            return  # back to what was read (a count given back): nothing to write
        write = update(
            self._tables.main,
            items.referrer_key(updated.user_id, updated.program_id),
            set=changes,
            condition=all_of(*conditions),
        )
        self._profile_writes[member] = write
        self._tx.write(write)

    def earnings(self, user_id: str, now: datetime, *, program: str = DEFAULT_PROGRAM) -> Earnings:
        # The user's referral rewards and the entries paid to them share the
        # `by_referrer_id_keys` partition of the user (entries carry no ordinal, so
        # they stay out of `by_referrer_keys`). It holds keys only, so that a state
        # change re-writes no copy of the item there: the amounts are read by key.
        keys = self._tables.query(
            self._tables.main,
            Key("referrer_pk").eq(items.referrer_pk(user_id, program)),
            index="by_referrer_id_keys",
        )
        found = self._tables.hydrate(
            self._tables.main,
            keys,
            project=f"reward_cents, created_at, hold_micros, entry_kind, {STATE_ATTRIBUTES}",
        )
        now_micros = to_micros(now)
        return Earnings.tally(
            (
                items.line_kind(item) is LineKind.CLAWBACK,
                self._runs.status(item).value,
                items.payable_micros(item) > now_micros,
                int(item["reward_cents"]),
            )
            for item in found
        )


def _unchanged_caps(read: Referrer) -> ConditionBase:
    """The cap counters are still as read. A profile written before the caps has no
    counters: they read as zero."""
    lifetime, month_cents = Attr("cap_lifetime_cents"), Attr("cap_month_cents")
    month = Attr("cap_month")
    return all_of(
        lifetime.not_exists() | lifetime.eq(read.cap_lifetime_cents),
        month_cents.not_exists() | month_cents.eq(read.cap_month_cents),
        month.not_exists() if read.cap_month is None else month.eq(read.cap_month),
    )
