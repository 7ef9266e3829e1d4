"""Programs as data: create and change programs, schedule rule versions, and find the
version that prices a reward.

Every server reads programs through a `RulesBook`, which keeps what it read for at
most `BOOK_TTL`. A rule version is scheduled at least `SCHEDULE_LEAD` ahead (longer
than the book keeps anything, plus room for clock skew between servers), so no
server can price a reward with a book that misses the version in force: a version a
book has not seen was scheduled after the book's read, and so takes effect after
the book has expired. A pause is not versioned: every server sees it within
`BOOK_TTL`.
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from referrals.domain.errors import (
    Conflict,
    InvalidInput,
    ProgramArchived,
    ProgramExists,
    ProgramNotFound,
    ProgramPaused,
)
from referrals.domain.model import Minimums
from referrals.domain.program import (
    BEGINNING,
    DEFAULT_PROGRAM,
    Attribution,
    Program,
    ProgramStatus,
    RuleVersion,
    in_force,
    next_version,
)
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.audit import add_entry
from referrals.services.retry import retry_on_conflict

BOOK_TTL = timedelta(seconds=2)
SCHEDULE_LEAD = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class ProgramView:
    program: Program
    versions: tuple[RuleVersion, ...]

    def current(self, at: datetime) -> RuleVersion | None:
        return in_force(self.versions, at)

    def scheduled(self, at: datetime) -> tuple[RuleVersion, ...]:
        return tuple(v for v in self.versions if v.effective_from > at)


def ensure_default_program(
    store: Store, clock: Clock, seed: RuleVersion, share_url_template: str | None = None
) -> None:
    """Create the `default` program if it is missing, its first rule version `seed`
    (built from the settings) in force from the beginning: it prices what was
    recorded before programs existed, as those settings did. Once it exists the
    settings no longer change it; its rules change through the programs API."""
    with store.read() as uow:
        if uow.programs.get(DEFAULT_PROGRAM) is not None:
            return
    now = clock.now()
    template = share_url_template if share_url_template and "{code}" in share_url_template else None
    program = Program(
        DEFAULT_PROGRAM, "Default program", share_url_template=template, created_at=now
    )
    first = replace(seed, program_id=DEFAULT_PROGRAM, version=1, effective_from=BEGINNING)
    try:
        with store.unit_of_work() as uow:
            uow.programs.add(program, replace(first, created_at=now))
            uow.commit()
    except Conflict:
        pass  # another process created it first


def create_program(
    store: Store,
    clock: Clock,
    actor: str,
    program: Program,
    rules: RuleVersion,
) -> ProgramView:
    """Create `program` with `rules` as its first version, in force at once (nothing
    can have been priced by a program that did not exist).

    Its currency is any of ISO 4217's (`Program` checks it), and never changes: its
    amounts are minor units of it. A payout run pays every program and keeps one total
    per currency, never summing different currencies."""
    now = clock.now()
    program = replace(program, status=ProgramStatus.ACTIVE, created_at=now)
    first = replace(rules, program_id=program.id, version=1, effective_from=now, created_at=now)
    try:
        with store.unit_of_work() as uow:
            if uow.programs.get(program.id) is not None:
                raise ProgramExists(f"a program with the id {program.id!r} exists")
            uow.programs.add(program, first)
            add_entry(uow, clock, actor, "program.create", program.id, None)
            uow.commit()
    except Conflict:
        raise ProgramExists(f"a program with the id {program.id!r} exists") from None
    return ProgramView(program, (first,))


def get_program(store: Store, program_id: str) -> ProgramView:
    with store.read() as uow:
        return program_in(uow, program_id)


def program_in(uow: UnitOfWork, program_id: str) -> ProgramView:
    """The program and its versions, read in the caller's unit of work."""
    program = uow.programs.get(program_id)
    if program is None:
        raise ProgramNotFound(f"no program has the id {program_id!r}")
    return ProgramView(program, tuple(uow.programs.versions(program_id)))


def list_programs(store: Store) -> Sequence[ProgramView]:
    with store.read() as uow:
        return [ProgramView(p, tuple(uow.programs.versions(p.id))) for p in uow.programs.list()]


def minimum_payouts(store: Store, clock: Clock) -> Minimums:
    """Each program's minimum payout in its rules in force now, for a payout run (which
    pays every program's users, carrying forward each total below its program's)."""
    now = clock.now()
    minimums = {}
    for view in list_programs(store):
        version = view.current(now)
        if version is not None:
            minimums[view.program.id] = version.minimum_payout_cents
    return Minimums(minimums)


def update_program(
    store: Store,
    clock: Clock,
    actor: str,
    program_id: str,
    *,
    name: str | None = None,
    status: ProgramStatus | None = None,
    share_url_template: str | None = None,
    clear_share_url: bool = False,
    landing_url: str | None = None,
    clear_landing_url: bool = False,
    attribution_window_days: int | None = None,
    attribution: Attribution | None = None,
) -> ProgramView:
    """Rename, pause, resume or archive a program, or change its share URL, landing URL
    or attribution settings. An archived program stays archived: the write holds only
    over the status it read, so a concurrent archive makes a resume read again and be
    refused."""

    def attempt() -> ProgramView:
        with store.unit_of_work() as uow:
            current = uow.programs.get(program_id)
            if current is None:
                raise ProgramNotFound(f"no program has the id {program_id!r}")
            archived = current.status is ProgramStatus.ARCHIVED
            if archived and status not in (None, ProgramStatus.ARCHIVED):
                raise ProgramArchived(f"program {program_id!r} is archived, and stays so")
            template = None if clear_share_url else share_url_template or current.share_url_template
            landing = None if clear_landing_url else landing_url or current.landing_url
            changed = replace(
                current,
                name=name if name is not None else current.name,
                status=status or current.status,
                share_url_template=template,
                landing_url=landing,
                attribution_window_days=current.attribution_window_days
                if attribution_window_days is None
                else attribution_window_days,
                attribution=attribution or current.attribution,
            )
            uow.programs.update(changed, current.status)
            moved = status is not None and status is not current.status
            action = f"program.{status.value}" if moved and status else "program.update"
            add_entry(uow, clock, actor, action, program_id, None)
            versions = tuple(uow.programs.versions(program_id))
            uow.commit()
        return ProgramView(changed, versions)

    return retry_on_conflict(attempt)


def schedule_rules(
    store: Store,
    clock: Clock,
    actor: str,
    program_id: str,
    rules: RuleVersion,
    effective_from: datetime | None = None,
) -> RuleVersion:
    """Add the program's next rule version, in force from `effective_from` (by default
    `SCHEDULE_LEAD` from now; never sooner, so every server sees it before it prices
    anything). It never reprices a reward earned before."""

    def attempt() -> RuleVersion:
        now = clock.now()
        start = effective_from or now + SCHEDULE_LEAD
        if start < now:
            raise InvalidInput("effective_from: cannot be in the past", field="effective_from")
        if start < now + SCHEDULE_LEAD:
            raise InvalidInput(
                f"effective_from: at least {SCHEDULE_LEAD.seconds} s from now, so that every "
                "server sees the version before it takes effect",
                field="effective_from",
            )
        with store.unit_of_work() as uow:
            if uow.programs.get(program_id) is None:
                raise ProgramNotFound(f"no program has the id {program_id!r}")
            proposed = replace(rules, program_id=program_id, effective_from=start)
            version = next_version(uow.programs.versions(program_id), proposed, now)
            uow.programs.add_version(version)
            add_entry(uow, clock, actor, "program.rules", f"{program_id}@{version.version}", None)
            uow.commit()
        return version

    return retry_on_conflict(attempt)


class RulesBook:
    """The programs and rule versions this server prices with, read again once they
    are `ttl` old (see the module's docstring for why that is exact). A program not
    found is not kept: one created a moment ago is found at once.

    The `default` program is created from `seed` the first time it is needed, if the
    database has none (`ensure_default_program`), so a process that starts without
    touching the database (a Lambda function, a server whose database is away) still
    finds it."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        seed: RuleVersion,
        share_url_template: str | None = None,
        ttl: timedelta = BOOK_TTL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._seed = seed
        self._share_url_template = share_url_template
        self._ttl = ttl.total_seconds()
        self._lock = threading.Lock()
        self._views: dict[str, tuple[float, ProgramView]] = {}
        self._default_ensured = False

    def ensure_default(self) -> None:
        if not self._default_ensured:
            ensure_default_program(self._store, self._clock, self._seed, self._share_url_template)
            self._default_ensured = True

    def currency(self, program_id: str) -> str:
        """The currency `program_id` pays its rewards in (it never changes)."""
        return self.view(program_id).program.currency

    def view(self, program_id: str, uow: UnitOfWork | None = None) -> ProgramView:
        """The program as this book keeps it, read again if it is `ttl` old: through
        `uow` if given (a signup's: it already holds a connection, and waiting for a
        second one from the same pool could wait forever under load)."""
        with self._lock:
            kept = self._views.get(program_id)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        if program_id == DEFAULT_PROGRAM and uow is None:
            self.ensure_default()  # a signup's entry point has made sure of it before
        read_at = time.monotonic()
        view = program_in(uow, program_id) if uow else get_program(self._store, program_id)
        with self._lock:
            self._views[program_id] = (read_at + self._ttl, view)
        return view

    def forget(self, program_id: str) -> None:
        """This server's own change applies to it at once."""
        with self._lock:
            self._views.pop(program_id, None)

    def in_force(self, program_id: str, at: datetime, uow: UnitOfWork | None = None) -> RuleVersion:
        return _version_at(self.view(program_id, uow), at)

    def for_signup(
        self, program_id: str, at: datetime, uow: UnitOfWork | None = None
    ) -> RuleVersion:
        """The version that prices a signup at `at`; refused if the program is paused.
        One look at the book: the status and the version come from the same read."""
        view = self.view(program_id, uow)
        if not view.program.takes_signups:
            raise ProgramPaused(f"program {program_id!r} is {view.program.status.value}")
        return _version_at(view, at)

    def minimums(self) -> Minimums:
        """Every program's minimum payout now (read afresh: a run is rare)."""
        self.ensure_default()
        return minimum_payouts(self._store, self._clock)

    def current(self, clock: Clock, program_id: str = DEFAULT_PROGRAM) -> RuleVersion:
        return self.in_force(program_id, clock.now())


def _version_at(view: ProgramView, at: datetime) -> RuleVersion:
    version = view.current(at)
    if version is None:
        first = view.versions[0].effective_from.isoformat() if view.versions else "never"
        raise InvalidInput(
            f"program {view.program.id!r} has no rules before {first}", field="signed_up_at"
        )
    return version
