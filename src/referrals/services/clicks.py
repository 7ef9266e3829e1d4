"""Following a tracked link: find the code's program and landing URL, record the click.

A visitor always gets somewhere: an unknown code leads to the default program's
landing URL, a paused or archived program's code to its own, both without a click
(nothing could be credited with it). Only a program with no landing URL at all has
nowhere to send them (404). The click is a write of its own, after the reads, and a
store that cannot take it now costs the click, never the redirect.
"""

import logging
from dataclasses import dataclass

from referrals.domain.checks import fingerprint
from referrals.domain.clicks import Click, new_click_id, referring_site, tracked_url, utm_of
from referrals.domain.codes import is_valid_code
from referrals.domain.errors import Conflict, NotFound, StorageUnavailable
from referrals.domain.model import Referrer
from referrals.domain.program import DEFAULT_PROGRAM
from referrals.ports import Clock, Store
from referrals.services.programs import RulesBook

logger = logging.getLogger("referrals.clicks")


@dataclass(frozen=True, slots=True)
class Visit:
    """What a person's request on a link tells: kept only as keyed hashes (address,
    user agent), the referring site's host and the UTM parameters."""

    ip: str | None
    user_agent: str | None
    referer: str | None
    query: dict[str, str]


@dataclass(frozen=True, slots=True)
class LinkTarget:
    url: str  # where to send the visitor
    click: Click | None  # the click recorded, if one was


def follow_link(
    store: Store, clock: Clock, book: RulesBook, key: bytes, code: str, visit: Visit | None
) -> LinkTarget:
    """Where the link with `code` leads, recording a click of `visit` if the code's
    program is active and has a landing URL (`visit` None: a bot, a HEAD request, an
    address over its limit: they are sent on without a click). `key` keys the hashes
    of the visitor's address and user agent."""
    referrer = _referrer(store, code)
    program = book.view(referrer.program_id if referrer else DEFAULT_PROGRAM).program
    if program.landing_url is None:
        raise NotFound(f"program {program.id!r} has no landing URL for its links")
    if referrer is None or not program.takes_signups:
        return LinkTarget(program.landing_url, None)
    click = _record(store, clock, key, referrer, visit) if visit is not None else None
    target = tracked_url(program.landing_url, referrer.code, click.id if click else None)
    return LinkTarget(target, click)


def _referrer(store: Store, code: str) -> Referrer | None:
    if not is_valid_code(code):
        return None
    with store.read() as uow:
        return uow.referrers.by_code(code)


def _record(
    store: Store, clock: Clock, key: bytes, referrer: Referrer, visit: Visit
) -> Click | None:
    utm = utm_of(visit.query)
    click = Click(
        id=new_click_id(),
        program_id=referrer.program_id,
        code=referrer.code,
        referrer_id=referrer.user_id,
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
    try:
        with store.unit_of_work() as uow:
            uow.clicks.add(click)
            uow.commit()
    except (StorageUnavailable, Conflict) as error:
        logger.warning("click not recorded: %s", type(error).__name__)
        return None
    return click
