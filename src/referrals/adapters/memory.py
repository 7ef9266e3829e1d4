"""An in-memory store: the fake the unit tests use, held to the same contract suite.

One lock serializes units of work; each works on a copy and publishes it on
commit, so an uncommitted or failed unit of work leaves nothing behind.
"""

import copy
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar

from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    UNEARNED,
    UNSETTLED,
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
    ReferrerTally,
    Reward,
    RewardKind,
    RunStatus,
    SignupParties,
    SignupSlot,
    SignupTally,
    StateTally,
    first_id_at,
    payout_floor,
)


@dataclass
class _State:
    referrers: dict[str, Referrer] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # code key -> user id
    referrals: dict[str, Referral] = field(default_factory=dict)
    referees: dict[str, str] = field(default_factory=dict)  # referee id -> referral id
    api_keys: dict[str, ApiKey] = field(default_factory=dict)  # hash -> key
    sessions: dict[tuple[str, str], DashboardSession] = field(default_factory=dict)
    runs: dict[str, PayoutRun] = field(default_factory=dict)
    outbox: dict[str, Event] = field(default_factory=dict)
    audit: dict[str, AuditEntry] = field(default_factory=dict)
    rewards: dict[str, Reward] = field(default_factory=dict)
    conversions: dict[str, Conversion] = field(default_factory=dict)
    signup_slots: dict[str, SignupSlot] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


class MemoryReferrers:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, user_id: str) -> Referrer | None:
        return self._s.referrers.get(user_id)

    def by_code(self, code: str) -> Referrer | None:
        user_id = self._s.codes.get(normalize_code(code))
        return self._s.referrers[user_id] if user_id else None

    def add(self, referrer: Referrer) -> None:
        key = normalize_code(referrer.code)
        if referrer.user_id in self._s.referrers or key in self._s.codes:
            raise Conflict("referrer or code exists")
        self._s.referrers[referrer.user_id] = referrer
        self._s.codes[key] = referrer.user_id

    def increment_referral_count(self, user_id: str) -> Referrer:
        referrer = self._s.referrers[user_id]
        updated = replace(referrer, referral_count=referrer.referral_count + 1)
        self._s.referrers[user_id] = updated
        return updated

    def give_back_count(self, user_id: str) -> None:
        referrer = self._s.referrers[user_id]
        self._s.referrers[user_id] = replace(referrer, referral_count=referrer.referral_count - 1)

    def add_earned(
        self, user_id: str, month: str, cents: int, seen: Referrer | None = None
    ) -> None:
        referrer = self._s.referrers[user_id]
        if seen is not None and seen.cap_counters != referrer.cap_counters:
            raise Conflict("the referrer's earnings changed meanwhile")
        self._s.referrers[user_id] = referrer.counting(month, cents)

    def earnings(self, user_id: str, now: datetime) -> Earnings:
        return Earnings.tally(
            (_kind(e) is LineKind.CLAWBACK, e.status, e.payable_at > now, _cents(e))
            for e in _entries(self._s)
            if _user(e) == user_id
        )


Entry = Referral | Reward
E = TypeVar("E", Referral, Reward)


def _transition(
    table: dict[str, E],
    key: str,
    allowed: Collection[ReferralStatus],
    to: ReferralStatus,
    note: str | None,
) -> E | None:
    current = table.get(key)
    if current is None or current.status not in allowed:
        return None
    table[key] = replace(current, status=to, note=note)
    return table[key]


def _entries(state: _State) -> Iterator[Entry]:
    """Everything a run pays: referrals' own rewards and the other entries."""
    yield from state.referrals.values()
    yield from state.rewards.values()


def _user(entry: Entry) -> str:
    return entry.referrer_id if isinstance(entry, Referral) else entry.user_id


def _cents(entry: Entry) -> int:
    return entry.reward_cents if isinstance(entry, Referral) else entry.cents


def _kind(entry: Entry) -> LineKind:
    clawback = isinstance(entry, Reward) and entry.kind is RewardKind.CLAWBACK
    return LineKind.CLAWBACK if clawback else LineKind.REWARD


def _put(state: _State, entry: Entry) -> None:
    if isinstance(entry, Referral):
        state.referrals[entry.id] = entry
    else:
        state.rewards[entry.id] = entry


class MemoryReferrals:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, referral_id: str) -> Referral | None:
        return self._s.referrals.get(referral_id)

    def by_referee(self, referee_id: str) -> Referral | None:
        referral_id = self._s.referees.get(referee_id)
        return self._s.referrals[referral_id] if referral_id else None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        referrers = MemoryReferrers(self._s)
        referrer = referrers.by_code(code)
        counted = referrers.increment_referral_count(referrer.user_id) if referrer else None
        return SignupParties(counted, self.by_referee(referee_id), referrers.get(referee_id))

    def add(self, referral: Referral) -> None:
        if referral.referee_id in self._s.referees or referral.id in self._s.referrals:
            raise Conflict("referee already referred")
        if referral.referrer_id not in self._s.referrers:
            raise Conflict("unknown referrer")
        self._s.referrals[referral.id] = referral
        self._s.referees[referral.referee_id] = referral.id

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        return _transition(self._s.referrals, referral_id, allowed, to, note)

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        referral = self._s.referrals.get(referral_id)
        if referral is None or referral.status is not ReferralStatus.AWAITING:
            return None
        changed = replace(
            referral, status=to, hold=hold, receipt=receipt, reward_cents=reward_cents
        )
        self._s.referrals[referral_id] = changed
        return changed

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        rows = sorted(
            (r for r in self._s.referrals.values() if r.referrer_id == referrer_id),
            key=lambda r: r.ordinal,
        )
        return [r for r in rows if after_ordinal is None or r.ordinal > after_ordinal][:limit]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
    ) -> Sequence[Referral]:
        rows = [
            r
            for r in sorted(self._s.referrals.values(), key=lambda r: r.id)
            if (status is None or r.status is status)
            and (referrer_id is None or r.referrer_id == referrer_id)
            and (after_id is None or r.id > after_id)
        ]
        return rows[:limit]


class MemoryRewards:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, reward: Reward) -> None:
        if reward.id in self._s.rewards or reward.id in self._s.referrals:
            raise Conflict("reward exists")
        self._s.rewards[reward.id] = reward

    def get(self, reward_id: str) -> Reward | None:
        return self._s.rewards.get(reward_id)

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        return sorted(
            (r for r in self._s.rewards.values() if r.referral_id == referral_id),
            key=lambda r: r.id,
        )

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        return _transition(self._s.rewards, reward_id, allowed, to, note)


class MemoryConversions:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, conversion: Conversion) -> None:
        if conversion.external_id in self._s.conversions:
            raise Conflict("conversion exists")
        self._s.conversions[conversion.external_id] = conversion

    def get(self, external_id: str) -> Conversion | None:
        return self._s.conversions.get(external_id)

    def signup_slot(self, user_id: str) -> SignupSlot | None:
        return self._s.signup_slots.get(user_id)

    def take_signup_slot(self, slot: SignupSlot) -> None:
        if slot.user_id in self._s.signup_slots:
            raise Conflict("signup slot taken")
        self._s.signup_slots[slot.user_id] = slot


class MemoryApiKeys:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, key: ApiKey) -> None:
        if key.key_hash in self._s.api_keys or any(
            k.id == key.id for k in self._s.api_keys.values()
        ):
            raise Conflict("key exists")
        self._s.api_keys[key.key_hash] = key

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self._s.api_keys.get(key_hash)

    def get(self, key_id: str) -> ApiKey | None:
        return next((k for k in self._s.api_keys.values() if k.id == key_id), None)

    def list(self) -> Sequence[ApiKey]:
        return sorted(self._s.api_keys.values(), key=lambda k: (k.created_at, k.id))

    def revoke(self, key: ApiKey, at: datetime) -> None:
        current = self._s.api_keys.get(key.key_hash)
        if current is None or current.revoked_at is not None:
            raise Conflict("the key was revoked meanwhile")
        self._s.api_keys[key.key_hash] = replace(current, revoked_at=at)

    def expire(self, key: ApiKey, at: datetime) -> None:
        current = self._s.api_keys.get(key.key_hash)
        if current is None or current.revoked_at is not None:
            raise Conflict("the key was revoked meanwhile")
        if current.expires_at != key.expires_at:
            raise Conflict("the key's expiry changed meanwhile")
        self._s.api_keys[key.key_hash] = replace(current, expires_at=at)

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        current = self._s.api_keys.get(key_hash)
        if current is not None and (
            current.last_used_at is None or current.last_used_at <= stale_before
        ):
            self._s.api_keys[key_hash] = replace(current, last_used_at=at)

    def count(self) -> int:
        return len(self._s.api_keys)

    def first_created_at(self) -> datetime | None:
        return min((k.created_at for k in self._s.api_keys.values()), default=None)


class MemorySessions:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, session: DashboardSession) -> None:
        if any(s.id == session.id for s in self._s.sessions.values()):
            raise Conflict("session exists")
        self._s.sessions[session.key_id, session.id] = session

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        return self._s.sessions.get((key_id, session_id))

    def end(self, session: DashboardSession, at: datetime) -> None:
        current = self._s.sessions.get((session.key_id, session.id))
        if current is not None and current.ended_at is None:
            self._s.sessions[session.key_id, session.id] = replace(current, ended_at=at)


class MemorySecrets:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, name: str) -> str | None:
        return self._s.secrets.get(name)

    def add(self, name: str, value: str, created_at: datetime) -> None:
        if name in self._s.secrets:
            raise Conflict(f"secret {name} exists")
        self._s.secrets[name] = value


class MemoryPayouts:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, period: str) -> PayoutRun | None:
        return self._s.runs.get(period)

    def list(self) -> Sequence[PayoutRun]:
        return sorted(self._s.runs.values(), key=lambda r: r.period, reverse=True)

    def last_completed(self) -> PayoutRun | None:
        done = [r for r in self._s.runs.values() if r.status is RunStatus.COMPLETED]
        return max(done, key=lambda r: r.completed_at or r.started_at, default=None)

    def completed_before(self, period: str) -> PayoutRun | None:
        done = [
            r
            for r in self._s.runs.values()
            if r.status is RunStatus.COMPLETED and r.period < period
        ]
        return max(done, key=lambda r: r.period, default=None)

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        run = self._s.runs.get(period)
        if run is None:
            run = PayoutRun(period, RunStatus.RUNNING, cutoff, started_at=now)
        elif run.status is RunStatus.COMPLETED or not (
            run.lease_expires_at is None or run.lease_expires_at < now or run.lease_owner == owner
        ):
            return False
        self._s.runs[period] = replace(
            run, status=RunStatus.RUNNING, lease_owner=owner, lease_expires_at=until, error=None
        )
        return True

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        run = self._s.runs.get(period)
        if run is None or run.lease_owner != owner or run.status is not RunStatus.RUNNING:
            return False
        self._s.runs[period] = replace(run, lease_expires_at=until)
        return True

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        # Ids are unique across referrals and entries, so one cursor walks both.
        eligible = sorted(
            (
                e
                for e in _entries(self._s)
                if e.status is ReferralStatus.PENDING
                and e.payable_at < cutoff
                and (after is None or e.id > after)
            ),
            key=lambda e: e.id,
        )[:limit]
        for entry in eligible:
            _put(self._s, replace(entry, status=ReferralStatus.PROCESSING, payout_period=period))
        return len(eligible), eligible[-1].id if eligible else after

    def release(self, period: str, minimum_cents: int) -> tuple[int, int]:
        assigned = [
            e
            for e in _entries(self._s)
            if e.payout_period == period and e.status is ReferralStatus.PROCESSING
        ]
        totals: dict[str, int] = defaultdict(int)
        for entry in assigned:
            totals[_user(entry)] += _cents(entry)
        floor = payout_floor(minimum_cents)
        below = {user for user, cents in totals.items() if cents < floor}
        for entry in assigned:
            if _user(entry) in below:
                _put(self._s, replace(entry, status=ReferralStatus.PENDING, payout_period=None))
        return len(below), sum(max(totals[user], 0) for user in below)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        return _lines(_entries(self._s), lambda e: e.payout_period == period)

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        def payable(e: Entry) -> bool:
            if e.status is ReferralStatus.PROCESSING:
                return e.payout_period == period
            return e.status is ReferralStatus.PENDING and e.payable_at < cutoff

        return _lines(_entries(self._s), payable)

    def complete(self, run: PayoutRun, owner: str) -> int:
        current = self._s.runs.get(run.period)
        if current is None or current.lease_owner != owner:
            return -1
        if current.status is not RunStatus.RUNNING:
            return -1
        self._s.runs[run.period] = replace(
            run, status=RunStatus.COMPLETED, lease_owner=None, lease_expires_at=None
        )
        paid = [
            e
            for e in _entries(self._s)
            if e.payout_period == run.period and e.status is ReferralStatus.PROCESSING
        ]
        for entry in paid:
            _put(self._s, replace(entry, status=ReferralStatus.PAID))
        return len(paid)

    def fail(self, period: str, owner: str, error: str) -> None:
        run = self._s.runs.get(period)
        if run is not None and run.lease_owner == owner:
            self._s.runs[period] = replace(
                run, status=RunStatus.FAILED, lease_owner=None, lease_expires_at=None, error=error
            )

    def lock_chain(self) -> None:
        return None  # a unit of work holds the store's lock until it ends

    def note_publication(self, period: str, problem: str | None) -> None:
        run = self._s.runs.get(period)
        if run is not None and run.status is RunStatus.COMPLETED:
            self._s.runs[period] = replace(run, error=problem)


def _lines(entries: Iterable[Entry], keep: Callable[[Entry], bool]) -> Iterator[PayoutLine]:
    counts: dict[tuple[str, LineKind], list[int]] = defaultdict(lambda: [0, 0])
    for e in entries:
        if keep(e):
            totals = counts[_user(e), _kind(e)]
            totals[0] += 1
            totals[1] += _cents(e)
    order = list(LineKind)  # a user's reward line, then their clawback line
    for user, kind in sorted(counts, key=lambda key: (key[0].encode(), order.index(key[1]))):
        count, cents = counts[user, kind]
        yield PayoutLine(user, count, cents, kind)


class MemoryOutbox:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, event: Event) -> None:
        if event.id in self._s.outbox:
            raise Conflict("event exists")
        self._s.outbox[event.id] = event

    def get(self, event_id: str) -> Event | None:
        return self._s.outbox.get(event_id)

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        due = sorted(
            (e for e in self._s.outbox.values() if _is_due(e, now)),
            key=lambda e: (e.next_attempt_at, e.id),
        )[:limit]
        for event in due:
            self._s.outbox[event.id] = replace(event, next_attempt_at=until)
        return sorted((self._s.outbox[e.id] for e in due), key=lambda e: e.id)

    def delivered(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            event = self._s.outbox[event_id]
            self._s.outbox[event_id] = replace(
                event,
                status=EventStatus.DELIVERED,
                attempts=event.attempts + 1,
                next_attempt_at=None,
                last_error=None,
            )

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        event = self._s.outbox[event_id]
        self._s.outbox[event_id] = replace(
            event,
            status=EventStatus.DEAD if dead else EventStatus.PENDING,
            attempts=event.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_error=error,
        )

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        events = sorted(self._s.outbox.values(), key=lambda e: e.id, reverse=True)
        return [e for e in events if status is None or e.status is status][:limit]

    def requeue(self, event_id: str, now: datetime) -> bool:
        event = self._s.outbox.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        self._s.outbox[event_id] = replace(
            event, status=EventStatus.PENDING, attempts=0, next_attempt_at=now
        )
        return True

    def backlog(self) -> int:
        return sum(e.status is EventStatus.PENDING for e in self._s.outbox.values())

    def prune_delivered(self, before: datetime, limit: int) -> int:
        first_kept = first_id_at(before)
        old = sorted(
            event_id
            for event_id, e in self._s.outbox.items()
            if e.status is EventStatus.DELIVERED and e.created_at < before and event_id < first_kept
        )[:limit]
        for event_id in old:
            del self._s.outbox[event_id]
        return len(old)

    def discard(self, event_id: str) -> bool:
        event = self._s.outbox.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        del self._s.outbox[event_id]
        return True


class MemoryAudit:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, entry: AuditEntry) -> None:
        if entry.id in self._s.audit:
            raise Conflict("audit entry exists")
        self._s.audit[entry.id] = entry

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        ids = sorted((i for i in self._s.audit if before_id is None or i < before_id), reverse=True)
        return [self._s.audit[i] for i in ids[:limit]]


def _is_due(event: Event, now: datetime) -> bool:
    return (
        event.status is EventStatus.PENDING
        and event.next_attempt_at is not None
        and event.next_attempt_at <= now
    )


class MemoryStats:
    """The dashboard's aggregates, computed from every row: the fake has no indexes."""

    def __init__(self, state: _State) -> None:
        self._s = state

    def signups(self, since: datetime) -> Sequence[SignupTally]:
        counts: Counter[tuple[date, int, ReferralStatus]] = Counter(
            (r.created_at.astimezone(UTC).date(), r.reward_cents, r.status)
            for r in self._s.referrals.values()
            if r.created_at >= since
        )
        return [SignupTally(*key, count) for key, count in counts.items()]

    def top_referrers(self, since: datetime, limit: int) -> Sequence[ReferrerTally]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self._s.referrals.values():
            if r.created_at >= since:
                totals[r.referrer_id][0] += 1
                totals[r.referrer_id][1] += 0 if r.status in UNEARNED else r.reward_cents
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0].encode()))
        return [ReferrerTally(user, n, cents) for user, (n, cents) in ranked[:limit]]

    def unsettled(self) -> Sequence[StateTally]:
        totals: dict[ReferralStatus, list[int]] = defaultdict(lambda: [0, 0])
        for entry in _entries(self._s):
            if entry.status in UNSETTLED:
                totals[entry.status][0] += 1
                totals[entry.status][1] += _cents(entry)
        return [StateTally(s, *totals[s]) for s in UNSETTLED if s in totals]


class MemoryUnitOfWork:
    referrers: MemoryReferrers
    referrals: MemoryReferrals
    api_keys: MemoryApiKeys
    sessions: MemorySessions
    secrets: MemorySecrets
    payouts: MemoryPayouts
    outbox: MemoryOutbox
    audit: MemoryAudit
    rewards: MemoryRewards
    conversions: MemoryConversions
    stats: MemoryStats

    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._state = copy.deepcopy(self._store.state)
        self.referrers = MemoryReferrers(self._state)
        self.referrals = MemoryReferrals(self._state)
        self.api_keys = MemoryApiKeys(self._state)
        self.sessions = MemorySessions(self._state)
        self.secrets = MemorySecrets(self._state)
        self.payouts = MemoryPayouts(self._state)
        self.outbox = MemoryOutbox(self._state)
        self.audit = MemoryAudit(self._state)
        self.rewards = MemoryRewards(self._state)
        self.conversions = MemoryConversions(self._state)
        self.stats = MemoryStats(self._state)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._store.lock.release()

    def commit(self) -> None:
        self._store.state = copy.deepcopy(self._state)


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.state = _State()
        # Failed authentications by subject: (window end, count). Apart from `state`,
        # which each unit of work copies whole.
        self.failures: dict[str, tuple[datetime, int]] = {}

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def read(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def check(self) -> None:
        return None

    def check_write(self) -> None:
        with self.unit_of_work():
            pass

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        with self.lock:
            for ended in [s for s, (ends, _) in self.failures.items() if ends <= now]:
                del self.failures[ended]
            ends, count = self.failures.get(subject, (now + window, 0))
            self.failures[subject] = (ends, count + 1)
            return count + 1, ends

    def dispose(self) -> None:
        return None
