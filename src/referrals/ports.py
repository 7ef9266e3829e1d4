"""The ports use cases depend on; adapters implement them."""

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from referrals.domain.model import (
    DEFAULT_PROGRAM,
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Earnings,
    Event,
    EventStatus,
    Minimums,
    PayoutLine,
    PayoutRun,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    ReferrerTally,
    Reward,
    SignupParties,
    SignupSlot,
    SignupTally,
    StateTally,
)
from referrals.domain.program import Program, ProgramStatus, RuleVersion


class LeaseLost(Exception):
    """The payout run's lease passed to another owner: the run must stop at once and
    leave the period to it (a store that fences its writes on the lease raises this
    from the write that found it lost)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class ReferrerRepository(Protocol):
    """A referrer is a user in a program: keyed by both (`program` is keyword-only and
    defaults to the default program, as routes without a program do). Codes are unique
    across programs, so a code finds its program."""

    def get(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer | None: ...

    def by_code(self, code: str) -> Referrer | None:
        """Look a referrer up by code, case-insensitively, in any program."""
        ...

    def add(self, referrer: Referrer) -> None:
        """Insert; raises Conflict if the user is a referrer of the program already, or
        the code is taken in any program."""
        ...

    def increment_referral_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer:
        """Atomically add one referral and return the profile as updated: its count is
        the referral's ordinal, its cap counters are current.

        The increment must serialize concurrent signups for one referrer, so that
        ordinals are exactly 1..n with no gap and no duplicate.
        """
        ...

    def give_back_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        """Undo an increment of this unit of work (a signup refused once counted); like
        a write, it may reach the store as late as the commit."""
        ...

    def add_earned(
        self,
        user_id: str,
        month: str,
        cents: int,
        seen: Referrer | None = None,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> None:
        """Count `cents` earned in `month` (YYYY-MM) toward the referrer's caps; negative
        cents give back a cancelled reward. The lifetime counter always moves; the month
        counter if `month` is its month, or restarts at a later month; an earlier month
        leaves it.

        With `seen` (the profile the amount was priced from), the write is conditional
        on the counters being unchanged since, and raises Conflict otherwise (at the
        latest on commit), so two rewards priced at once cannot both pass a cap. In one
        unit of work, after `increment_referral_count` of the same referrer, it joins
        that write (DynamoDB writes an item once per transaction).
        """
        ...

    def earnings(self, user_id: str, now: datetime, *, program: str = DEFAULT_PROGRAM) -> Earnings:
        """Every entry of the program paid to `user_id` (their rewards as a referrer,
        their reward as a referee, clawbacks), by state; pending ones payable by `now`
        count as payable."""
        ...


class ReferralRepository(Protocol):
    def get(self, referral_id: str) -> Referral | None: ...

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        """The referee's referral in the program: a user is referred once per program."""
        ...

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        """The referrer of `code` (case-insensitively), the referee's earlier referral
        and the referee's profile in the code's program, read together, with the
        referrer's count incremented as by `increment_referral_count` in the same step:
        the referrer comes as updated, its count the ordinal of the signup if it goes
        ahead (else the signup gives it back). A referee signing up with their own code
        is always refused; whether `referee` then reads as counted or not is up to the
        store."""
        ...

    def add(self, referral: Referral) -> None:
        """Insert; raises Conflict if the referee was already referred in its program."""
        ...

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        """Move the reward to `to` if it is in one of the `allowed` states, with `note`.

        Returns the referral as changed, or None if there is no such referral or
        it is in another state. The write is conditional on the state: of two
        concurrent transitions one wins, and the other finds the new state
        (None) or raises Conflict, at the latest on commit (then a retry reads
        the new state).
        """
        ...

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        """An awaiting referral's conversion: it moves to `to` (pending or held) with a
        new hold, receipt and reward (the caps may cut it now). None if it is missing or
        not awaiting; conditional like `transition`."""
        ...

    def for_referrer(
        self,
        referrer_id: str,
        after_ordinal: int | None,
        limit: int,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> Sequence[Referral]:
        """A referrer's referrals in the program by ordinal, those after `after_ordinal`."""
        ...

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
        *,
        program: str | None = None,
    ) -> Sequence[Referral]:
        """Referrals in id (creation) order, optionally filtered: of every program if
        `program` is None, but a `referrer_id` is a referrer of `program` (of the default
        program if None)."""
        ...


class RewardRepository(Protocol):
    """Entries besides a referral's own reward: referee rewards and clawbacks."""

    def add(self, reward: Reward) -> None:
        """Insert; raises Conflict if the id is taken."""
        ...

    def get(self, reward_id: str) -> Reward | None: ...

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        """The entries that came from one referral, by id."""
        ...

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        """As ReferralRepository.transition, for an entry."""
        ...


class ConversionRepository(Protocol):
    def add(self, conversion: Conversion) -> None:
        """Insert; raises Conflict if the external id was recorded before."""
        ...

    def get(self, external_id: str) -> Conversion | None: ...

    def signup_slot(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> SignupSlot | None: ...

    def take_signup_slot(self, slot: SignupSlot) -> None:
        """Insert; raises Conflict if the user's slot in the program is taken (at the
        latest on commit).
        A conversion and a signup of one user at once both take it: one commits, the
        other retries and finds the first one's work."""
        ...


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> None:
        """Insert; raises Conflict if the id or the hash is taken."""
        ...

    def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key of this hash, in whatever state (the caller checks `ApiKey.active`)."""
        ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def list(self) -> Sequence[ApiKey]:
        """Every key, revoked and expired ones too, oldest first (then by id)."""
        ...

    def revoke(self, key: ApiKey, at: datetime) -> None:
        """Mark `key` (as read) revoked at `at`. Conditional on it not being revoked:
        raises Conflict otherwise, at the latest on commit."""
        ...

    def expire(self, key: ApiKey, at: datetime) -> None:
        """Make `key` (as read) expire at `at`. Conditional on it not being revoked and
        its expiry being unchanged since read: raises Conflict otherwise, at the latest
        on commit."""
        ...

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        """Record a use: set `last_used_at` to `at` if it is unset or not after `stale_before`,
        else change nothing. A store may raise Conflict on commit when a concurrent touch
        won; nothing is lost then."""
        ...

    def count(self) -> int: ...

    def first_created_at(self) -> datetime | None:
        """When the oldest key was made, or None if there is none: when the store was
        put to use (the first `serve` makes a key, and so does `keys create` before it)."""
        ...


class SessionRepository(Protocol):
    """Dashboard sessions, found by the key that signed in and the session's id."""

    def add(self, session: DashboardSession) -> None:
        """Insert; raises Conflict if the id is taken."""
        ...

    def get(self, key_id: str, session_id: str) -> DashboardSession | None: ...

    def end(self, session: DashboardSession, at: datetime) -> None:
        """Mark `session` ended at `at`, unless it has ended already."""
        ...


class SecretRepository(Protocol):
    """Secrets the service keeps for itself, by name (the signing secret when none is
    configured). Whoever reads the store reads them."""

    def get(self, name: str) -> str | None: ...

    def add(self, name: str, value: str, created_at: datetime) -> None:
        """Insert; raises Conflict (at the latest on commit) if `name` is taken."""
        ...


class ProgramRepository(Protocol):
    """Programs and their rule versions. A version, once added, never changes."""

    def add(self, program: Program, first: RuleVersion) -> None:
        """Insert a program with its first rule version; raises Conflict (at the latest
        on commit) if its id is taken."""
        ...

    def get(self, program_id: str) -> Program | None: ...

    def list(self) -> Sequence[Program]:
        """Every program, by id."""
        ...

    def update(self, program: Program, status_was: ProgramStatus) -> None:
        """Replace a program's name, status and share URL template (its id, currency and
        creation time never change), if its status is still `status_was`; raises
        Conflict (at the latest on commit) if another change came first."""
        ...

    def add_version(self, version: RuleVersion) -> None:
        """Insert the next rule version of its program; raises Conflict (at the latest on
        commit) if that number is taken (a concurrent scheduling won)."""
        ...

    def versions(self, program_id: str) -> Sequence[RuleVersion]:
        """The program's rule versions, by number (and so by effective_from)."""
        ...


class PayoutRepository(Protocol):
    def get(self, period: str) -> PayoutRun | None: ...

    def list(self) -> Sequence[PayoutRun]:
        """Every run, the newest period first."""
        ...

    def last_completed(self) -> PayoutRun | None:
        """The run completed most recently: the report hash chain's link by completion."""
        ...

    def completed_before(self, period: str) -> PayoutRun | None:
        """The completed run of the latest period before `period` (YYYY-MM, month order):
        the report hash chain's link by month."""
        ...

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Conditionally take the period's run for `owner` until `until`.

        Creates the run if absent; takes over one that failed or whose lease
        expired (or that `owner` already holds). False if it is completed or
        another owner's lease is live.
        """
        ...

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        """Extend the lease; False if `owner` lost it (the caller must stop)."""
        ...

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        """Move up to `limit` pending entries (referrals' rewards and other entries)
        payable before `cutoff` to this period.

        Each moves pending -> processing by a conditional update, so a reward is
        assigned to one run only. Returns how many moved and where the next
        batch may start: `after`, passed back, lets a store skip the rewards
        it already walked (None: walk from the start). Fewer than `limit`
        means no eligible reward is left. A store that fences its writes on the
        lease raises LeaseLost if it found the lease lost.
        """
        ...

    def release(self, period: str, minimums: Minimums) -> tuple[int, int]:
        """Carry forward: every entry assigned to `period` of a user whose total in it in
        a program is below that program's minimum (`minimums.floor`) or negative goes
        back to pending, for a later run. (A total of zero with no minimum settles: a
        clawback offset by a new reward.)

        Returns how many (user, program) totals were released and the sum of the
        positive ones (what was deferred; a debt carried is not money that was due);
        LeaseLost as `assign_batch`. Runs after the last batch is assigned, in a unit of
        work that renewed the lease.
        """
        ...

    def lines(self, period: str) -> Iterator[PayoutLine]:
        """Per-user and program totals of the entries assigned to `period` (paid, or
        clawed back since), a reward line and a clawback line per user and program as
        they have them, streamed in PayoutLine order."""
        ...

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        """The lines a run would pay now: assigned to `period`, or pending and payable
        before `cutoff`."""
        ...

    def complete(self, run: PayoutRun, owner: str) -> int:
        """Mark the run completed and its entries paid, if `owner` holds the lease.

        The run's state changes when the unit of work commits. Returns the number
        of entries the run has paid; raises LeaseLost if the lease was lost.
        """
        ...

    def fail(self, period: str, owner: str, error: str) -> None:
        """Record a failed attempt and release the lease, if `owner` holds it."""
        ...

    def lock_chain(self) -> None:
        """Serialize completions: the unit of work completing a run calls this before it
        reads the head of the report chain (`last_completed`, `completed_before`), so two
        runs completing at once link one after the other, never both to one predecessor.

        A lock held until the unit of work ends, or, on a store without locks, a
        condition on the chain's head that `complete` carries: its commit then raises
        Conflict if another completion committed since, and the completion is retried.
        """
        ...

    def note_publication(self, period: str, problem: str | None) -> None:
        """Record in a completed run's `error` why its report is not published, or, with
        None, that it is. Changes nothing if the run is not completed."""
        ...


class OutboxRepository(Protocol):
    def add(self, event: Event) -> None: ...

    def get(self, event_id: str) -> Event | None: ...

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        """Pending events due by `now`, hidden from other dispatchers until `until`."""
        ...

    def delivered(self, event_ids: Sequence[str]) -> None: ...

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None: ...

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        """Events, newest first."""
        ...

    def requeue(self, event_id: str, now: datetime) -> bool:
        """Send a dead event again; False if there is no such dead event."""
        ...

    def backlog(self) -> int:
        """How many events wait for delivery."""
        ...

    def prune_delivered(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` delivered events made before `before`, the oldest first;
        how many were deleted. Made before means both `created_at` and the id (a ULID,
        minted as the event is made) fall before it, so a store reads an id range, not
        every delivered event. Pending and dead events are kept whatever their age."""
        ...

    def discard(self, event_id: str) -> bool:
        """Delete a dead event (the operator gave up on it); False if there is no such
        dead event."""
        ...


class AuditRepository(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        """Entries newest first (by id), those before `before_id`."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Changes persist only if `commit()` is called inside the `with`.

    A unit of work writes each record at most once (DynamoDB transactions allow
    one operation per item), and conflicts surface as Conflict at the latest on
    commit.
    """

    @property
    def referrers(self) -> ReferrerRepository: ...

    @property
    def referrals(self) -> ReferralRepository: ...

    @property
    def rewards(self) -> RewardRepository: ...

    @property
    def conversions(self) -> ConversionRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def secrets(self) -> SecretRepository: ...

    @property
    def payouts(self) -> PayoutRepository: ...

    @property
    def programs(self) -> ProgramRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def stats(self) -> "StatsRepository": ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make the work durable before returning; it ends the unit of work (a
        store may share one transaction among writers, so nothing may follow)."""
        ...


class Store(Protocol):
    @property
    def concurrency_limit(self) -> int | None:
        """How many units of work can be open at once, if the store bounds them (a
        PostgreSQL store's connection pool); None if not. The server runs no more
        request threads than this, so none waits in the pool."""
        ...

    def unit_of_work(self) -> UnitOfWork:
        """A read-write transaction; writers are serialized where the engine needs it."""
        ...

    def read(self) -> UnitOfWork:
        """A read-only transaction: never blocks writers where the engine allows it."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def check_write(self) -> None:
        """Raise unless a write transaction can begin and end now (readiness): where
        the engine has a write lock, take it and release it."""
        ...

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Count one failed authentication of `subject` (a client address) in its
        current window, atomically and durably, in a write of its own (not a unit of
        work's); return the count within the window and when the window ends. A subject
        with no window, or whose window ended by `now`, starts one of `window` at `now`
        with a count of 1. Every server of the store shares the count. Ended windows may
        be deleted meanwhile."""
        ...

    def dispose(self) -> None:
        """Close every connection the store holds; it is not used afterwards."""
        ...


class ReportStore(Protocol):
    """Where payout reports go: a local folder or an S3 bucket."""

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        """Store `data` under `key` atomically: readers see all of it or nothing."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None:
        """Remove `key` if it is there (a staged copy once its report is published)."""
        ...

    def scratch(self) -> BinaryIO:
        """An empty temporary file, removed when closed, to render a report into
        before `put`: a report may be larger than memory should hold."""
        ...


class Notifier(Protocol):
    def deliver(self, event: Event) -> None:
        """Deliver one event or raise; delivery is retried, so receivers dedupe by event id."""
        ...


class PayoutStarter(Protocol):
    """Starts a period's payout run somewhere else and returns at once: on AWS, an
    execution of the payout state machine, which loops the payout function until the
    run completes (a run can outlast a request by far)."""

    def start(self, period: str) -> str:
        """Start the run of `period` (`YYYY-MM`, ended), or find its start still under
        way: calling again while it runs starts nothing new. Returns what names the
        start (the execution's ARN)."""
        ...


class StatsRepository(Protocol):
    """The dashboard's aggregates. Each reads an index range, never every referral, so a
    page view costs the same with a million referrals as with a thousand (but for the
    window's own rows)."""

    def signups(self, since: datetime) -> Sequence[SignupTally]:
        """Referrals created at or after `since`, counted by UTC day of `created_at`,
        reward amount and state, in no particular order.

        A referral's id is minted when it is written: at its `created_at` (within
        ID_SLACK), or later for an import with an older `signed_up_at`. So a store
        may read only the ids minted since `since - ID_SLACK`, then filter on
        `created_at`.
        """
        ...

    def top_referrers(self, since: datetime, limit: int) -> Sequence[ReferrerTally]:
        """The `limit` referrers with the most referrals created since `since`, most
        first, ties by referrer id (bytes); read like `signups`."""
        ...

    def unsettled(self) -> Sequence[StateTally]:
        """What is owed and not paid yet, per UNSETTLED state that has any: referrals'
        rewards and other entries (referee rewards, clawbacks) together."""
        ...
