"""Simulating rule versions against a program's recorded referrals, and the fraud checks'
report: read-only, streamed from the store.

A simulation reads the program's referrals through the store's `replay` reader
(ports.replay): only what the replay reads of each, streamed in id order in one read
(a few seconds for a million rows on SQL). The checks report reads whole referrals,
a page per read transaction, through `ReferralRepository.search`. Memory holds a
part or a page and the replay's small record per referrer (domain.simulation), never
the window; time is bounded by `max_rows` read.
"""

from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import replace

from referrals.domain.checks_report import ChecksReport, ChecksTally
from referrals.domain.errors import InvalidInput
from referrals.domain.model import ID_SLACK, Referral, first_id_at
from referrals.domain.program import RuleVersion
from referrals.domain.simulation import Replay, Simulation, Window
from referrals.ports import Store
from referrals.services.programs import get_program

PAGE = 2000
# Past this many referrals read, a request is refused rather than left running: a
# backtest reads and prices about 3.5 us a referral on SQLite and PostgreSQL, a
# proposal with caps 8 us, the checks report 12 us (BENCHMARKS.md), so at most about
# half a minute of a server thread.
MAX_ROWS = 2_000_000
MAX_MOVERS = 500


def simulate(
    store: Store,
    program_id: str,
    window: Window,
    proposal: RuleVersion | None,
    limit: int = 20,
    *,
    page: int = PAGE,
    max_rows: int = MAX_ROWS,
) -> Simulation:
    """What the program's rewards earned in `window` would have been under `proposal`
    (in force from the window's start), beside what they were; with None, under the
    versions that actually priced them (a backtest: it reproduces what was earned).

    Reads the program's referrals from its first to the window's end: the caps price
    each reward against what its referrer had earned before, from the beginning (see
    domain.simulation). `limit`: how many referrers to list, the largest changes first.
    """
    if not 1 <= limit <= MAX_MOVERS:
        raise InvalidInput(f"limit: 1-{MAX_MOVERS}", field="limit")
    view = get_program(store, program_id)
    if proposal is not None:
        proposal = replace(proposal, program_id=program_id)
    replay = Replay(window, view.versions, proposal)
    # Ids are minted when a referral is written, at most ID_SLACK before its time.
    stop = first_id_at(window.end + ID_SLACK)
    with closing(store.replay.rows(program_id, stop, page)) as parts:
        for rows in parts:
            _bounded(replay.scanned + len(rows), max_rows)
            replay.feed(rows)
    return replay.result(limit)


def checks_report(
    store: Store,
    program_id: str,
    window: Window,
    *,
    page: int = PAGE,
    max_rows: int = MAX_ROWS,
) -> ChecksReport:
    """Per fraud check and mode, the rewards signed up in `window` it flagged and passed,
    by what became of them (domain.checks_report)."""
    get_program(store, program_id)  # 404 for a program that does not exist
    tally = ChecksTally(window)
    start = first_id_at(window.start - ID_SLACK)
    stop = first_id_at(window.end + ID_SLACK)
    for referrals in pages(store, program_id, start, stop, page, max_rows):
        tally.feed(referrals)
    return tally.report()


def pages(
    store: Store,
    program_id: str,
    after: str | None,
    stop: str,
    page: int,
    max_rows: int,
) -> Iterator[Sequence[Referral]]:
    """The program's referrals with ids after `after` and before `stop`, in id order, a
    page per read transaction; refused past `max_rows` (a window too large to read)."""
    read = 0
    while True:
        with store.read() as uow:
            found = uow.referrals.search(None, None, after, page, program=program_id)
        rows = [r for r in found if r.id < stop]
        if rows:
            read += len(rows)
            _bounded(read, max_rows)
            yield rows
        if len(rows) < page:
            return
        after = rows[-1].id


def _bounded(read: int, max_rows: int) -> None:
    """Refuse a window whose history is too long to read."""
    if read > max_rows:
        raise InvalidInput(
            f"to: the program's referrals up to it are more than {max_rows:,}: "
            "choose an earlier end",
            field="to",
        )
