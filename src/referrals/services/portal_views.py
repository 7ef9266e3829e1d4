"""The referrer portal: what a link to a referrer's page claims, and the page's view.

The token that carries the claims is the web layer's (`web.tokens`): here the claims
are made, and checked against the referrer whose code is in the page's path.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from referrals.domain.codes import is_valid_code, normalize_code
from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.links import InvalidLink, LinkClaims
from referrals.domain.model import DEFAULT_PROGRAM, Referral
from referrals.domain.program import RuleVersion
from referrals.ports import Clock, Store
from referrals.services.queries import ReferrerStats, stats_of

MIN_TTL_SECONDS = 60
MAX_TTL_SECONDS = 90 * 24 * 3600  # the most the portal_link_ttl_seconds setting allows
RECENT_REFERRALS = 50
CLICK_DAYS = 30  # the clicks shown: those on the referrer's links in the last 30 days


@dataclass(frozen=True, slots=True)
class PortalView:
    stats: ReferrerStats
    recent: Sequence[Referral]  # the most recent first, at most RECENT_REFERRALS
    clicks: int  # on the referrer's tracked links in the last CLICK_DAYS days
    expires_at: datetime  # when the link that opened it stops working


def link_claims(
    store: Store,
    clock: Clock,
    user_id: str,
    ttl_seconds: int,
    max_ttl_seconds: int,
    *,
    program: str = DEFAULT_PROGRAM,
) -> LinkClaims:
    """What a link to `user_id`'s portal page in `program`, valid for `ttl_seconds`,
    claims (the page is the code's, and codes are the program's)."""
    if not MIN_TTL_SECONDS <= ttl_seconds <= max_ttl_seconds:
        raise InvalidInput(f"ttl_seconds must be between {MIN_TTL_SECONDS} and {max_ttl_seconds}")
    with store.read() as uow:
        referrer = uow.referrers.get(user_id, program=program)
    if referrer is None:
        raise NotFound(f"no referrer {user_id!r}")
    # Whole seconds: the token holds unix seconds, and the answer says the same instant.
    expires_at = int(clock.now().timestamp()) + ttl_seconds
    return LinkClaims(referrer.user_id, referrer.code, expires_at)


def open_portal(
    store: Store,
    clock: Clock,
    rules: Callable[[str], RuleVersion],
    code: str,
    claims: LinkClaims | None,
) -> PortalView:
    """The page of the referrer whose `code` is in the path, if the link's `claims` (None:
    no valid, unexpired link) are theirs; `rules`: a program's version in force (its
    next tier is shown).

    NotFound for a code no referrer has (codes are public: they are shared to be
    used), then InvalidLink for no claims, or claims for another code or user.
    """
    if not is_valid_code(code):
        raise NotFound("no such code")
    # One read: the count, the earnings and the list agree, and the referrer is read once.
    with store.read() as uow:
        owner = uow.referrers.by_code(code)
        if owner is None:
            raise NotFound("no such code")
        if claims is None:
            raise InvalidLink("the link is missing, not valid or expired")
        if normalize_code(claims.code) != normalize_code(code) or claims.user_id != owner.user_id:
            raise InvalidLink("the link is for another referrer")
        stats = stats_of(uow, clock, rules(owner.program_id), owner)
        # Ordinals run 1..n without gaps, so the last ones are those after n - RECENT.
        after = max(owner.referral_count - RECENT_REFERRALS, 0)
        recent = uow.referrals.for_referrer(
            owner.user_id, after, RECENT_REFERRALS, program=owner.program_id
        )
        now = clock.now()
        since = now - timedelta(days=CLICK_DAYS)
        clicks = uow.clicks.count(owner.program_id, owner.user_id, since, now)
    expires_at = datetime.fromtimestamp(claims.expires_at, UTC)
    return PortalView(stats, list(reversed(recent)), clicks, expires_at)
