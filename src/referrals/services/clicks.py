"""Following a tracked link: find the code's program and landing URL, record the click.

A visitor always gets somewhere: an unknown code leads to the default program's
landing URL, a paused or archived program's code to its own, both without a click
(nothing could be credited with it). Only a program with no landing URL at all has
nowhere to send them (404). The click is a write of its own, after the reads, and a
store that cannot take it now costs the click, never the redirect.

A click must cost about nothing (issue 25; docs/decisions/click-write-behind.md):
- A server with a click writer (`referrals serve`: `referrals.click_writer`) passes its
  `record`: the click is handed to it, to be written within a moment in a batch,
  instead of in a transaction of its own.
- Whose a code is (`LinkOwners`) is kept once found: a code is its referrer's for
  good (codes are neither changed, reassigned nor deleted), so a kept owner is never
  stale, and a link followed again reads nothing. An unknown code is not kept: a
  code enrolled a moment later must be found.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from referrals.domain.checks import fingerprint
from referrals.domain.clicks import Click, new_click_id, referring_site, tracked_url, utm_of
from referrals.domain.codes import is_valid_code, normalize_code
from referrals.domain.errors import Conflict, NotFound, StorageUnavailable
from referrals.domain.program import DEFAULT_PROGRAM
from referrals.ports import Clock, Store
from referrals.services.programs import RulesBook

logger = logging.getLogger("referrals.clicks")

# Codes whose owner a process keeps (about 200 bytes each); past it the first kept
# goes first, and is read again if followed again.
OWNERS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class Visit:
    """What a person's request on a link tells: kept only as keyed hashes (address,
    user agent), the referring site's host and the UTM parameters."""

    ip: str | None
    user_agent: str | None
    referer: str | None
    query: dict[str, str]


@dataclass(frozen=True, slots=True)
class LinkOwner:
    """Whose a tracked link is: what a click needs of its referrer, none of which ever
    changes (unlike the referrer's counts, which are not kept)."""

    program_id: str
    code: str  # as the referrer holds it
    referrer_id: str


class LinkOwners:
    """The owners of the codes this process has followed, at most `size` of them."""

    def __init__(self, store: Store, size: int = OWNERS_KEPT) -> None:
        self._store = store
        self._size = size
        self._found: dict[str, LinkOwner] = {}
        self._lock = threading.Lock()  # routes run in several threads

    def of(self, code: str) -> LinkOwner | None:
        """The owner of `code` (any case); None for a code nobody holds (not kept)."""
        if not is_valid_code(code):
            return None
        key = normalize_code(code)
        kept = self._found.get(key)  # one dict read, atomic: no lock on the hot path
        if kept is not None:
            return kept
        found = _owner(self._store, code)
        if found is not None:
            with self._lock:
                if len(self._found) >= self._size:
                    del self._found[next(iter(self._found))]
                self._found[key] = found
        return found


@dataclass(frozen=True, slots=True)
class LinkTarget:
    url: str  # where to send the visitor
    click: Click | None  # the click recorded, if one was


def follow_link(
    store: Store,
    clock: Clock,
    book: RulesBook,
    key: bytes,
    code: str,
    visit: Visit | None,
    *,
    record: Callable[[Click], bool] | None = None,
    owners: LinkOwners | None = None,
) -> LinkTarget:
    """Where the link with `code` leads, recording a click of `visit` if the code's
    program is active and has a landing URL (`visit` None: a bot, a HEAD request, an
    address over its limit: they are sent on without a click). `key` keys the hashes
    of the visitor's address and user agent. With `record`, the click is handed to it
    (False: it was dropped, and the visitor goes on without a click id) instead of
    written here; with `owners`, the code's owner is looked up there."""
    owner = owners.of(code) if owners is not None else _owner(store, code)
    program = book.view(owner.program_id if owner else DEFAULT_PROGRAM).program
    if program.landing_url is None:
        raise NotFound(f"program {program.id!r} has no landing URL for its links")
    if owner is None or not program.takes_signups:
        return LinkTarget(program.landing_url, None)
    click = _record(store, clock, key, owner, visit, record) if visit is not None else None
    target = tracked_url(program.landing_url, owner.code, click.id if click else None)
    return LinkTarget(target, click)


def _owner(store: Store, code: str) -> LinkOwner | None:
    if not is_valid_code(code):
        return None
    with store.read() as uow:
        referrer = uow.referrers.by_code(code)
    return LinkOwner(referrer.program_id, referrer.code, referrer.user_id) if referrer else None


def _record(
    store: Store,
    clock: Clock,
    key: bytes,
    owner: LinkOwner,
    visit: Visit,
    record: Callable[[Click], bool] | None,
) -> Click | None:
    utm = utm_of(visit.query)
    click = Click(
        id=new_click_id(),
        program_id=owner.program_id,
        code=owner.code,
        referrer_id=owner.referrer_id,
        at=clock.now(),
        ip_hash=fingerprint(key, visit.ip),
        ua_hash=fingerprint(key, visit.user_agent),
        referring_site=referring_site(visit.referer),
        utm_source=utm["utm_source"],
        utm_medium=utm["utm_medium"],
        utm_campaign=utm["utm_campaign"],
        utm_term=utm["utm_term"],
        utm_content=utm["utm_content"],
    )
    if record is not None:
        return click if record(click) else None
    try:
        with store.unit_of_work() as uow:
            uow.clicks.add(click)
            uow.commit()
    except (StorageUnavailable, Conflict) as error:
        logger.warning("click not recorded: %s", type(error).__name__)
        return None
    return click
