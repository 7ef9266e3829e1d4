"""Clicks on tracked referral links: what is kept of one, and which are not counted.

A click is recorded by the public redirect `GET /l/{code}` and carried to the signup
by its id (in the landing URL, then the snippet's first-party cookie). What is kept
is what the funnel needs and no more: the time, the program, the code and its
referrer, keyed hashes of the IP address and user agent (comparable, never readable
back), the referring site's host (not its path, which can carry a user's data), and
the UTM parameters, each truncated.

A click id is 144 random bits, URL-safe: it is a bearer value (whoever holds it
attributes a signup to the click), so it must not be guessable from other ids nor
from the time, as a ULID's would be.
"""

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

CLICK_ID_BYTES = 18  # 144 bits: 24 URL-safe characters, no padding
CLICK_ID_LENGTH = 24
_CLICK_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_UTM = 100
MAX_SITE = 253  # a DNS name's longest
_PRINTABLE = re.compile(r"[^\x20-\x7e]")

# Crawlers, link unfurlers and HTTP libraries, by a piece of their user agent
# (lower-cased). Not exhaustive: the common ones, which a link shared on a social
# network or in a chat is fetched by before (and often instead of) any person.
BOT_PATTERNS = (
    "bot",  # googlebot, bingbot, twitterbot, slackbot, discordbot, linkedinbot...
    "crawl",
    "spider",
    "slurp",  # Yahoo
    "facebookexternalhit",
    "facebookcatalog",
    "embedly",
    "quora link preview",
    "outbrain",
    "pinterest",
    "vkshare",
    "w3c_validator",
    "whatsapp",
    "skypeuripreview",
    "preview",  # "Google Web Preview", "Bitly Preview"
    "lighthouse",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "okhttp",
    "httpclient",
    "axios/",
    "node-fetch",
    "libwww-perl",
    "scrapy",
)


def is_bot(user_agent: str | None) -> bool:
    """Whether a request with this user agent is a crawler's, not a person's. No user
    agent at all is one: every browser sends one."""
    if not user_agent or not user_agent.strip():
        return True
    agent = user_agent.casefold()
    return any(pattern in agent for pattern in BOT_PATTERNS)


def new_click_id() -> str:
    return secrets.token_urlsafe(CLICK_ID_BYTES)


def is_valid_click_id(value: str) -> bool:
    return bool(_CLICK_ID.fullmatch(value))


def referring_site(referer: str | None) -> str | None:
    """The host of the page the link was on (from the Referer header), lower-cased:
    where the traffic comes from, without the path or query (which may name a user)."""
    if not referer:
        return None
    try:
        host = urlsplit(referer.strip()).hostname
    except ValueError:
        return None
    return host[:MAX_SITE] if host else None


def utm_of(query: Mapping[str, str]) -> dict[str, str | None]:
    """The UTM parameters of a link's query, each printable ASCII, truncated to
    `MAX_UTM` characters; None for a missing or empty one."""
    found: dict[str, str | None] = {}
    for name in UTM_FIELDS:
        value = _PRINTABLE.sub("", query.get(name) or "").strip()[:MAX_UTM]
        found[name] = value or None
    return found


@dataclass(frozen=True, slots=True)
class Click:
    """One person's click on a referrer's tracked link."""

    id: str
    program_id: str
    code: str  # as the referrer holds it (the link's may differ in case)
    referrer_id: str
    at: datetime
    ip_hash: str | None = None  # keyed HMAC of the client address: never the address
    ua_hash: str | None = None  # keyed HMAC of the user agent
    referring_site: str | None = None  # the referring page's host
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None

    def attributes_at(self, moment: datetime, window_days: int) -> bool:
        """Whether a signup at `moment` is within the click's attribution window: not
        before the click (less a minute of clock skew between servers), and at most
        `window_days` after it."""
        skew = timedelta(minutes=1)
        return self.at - skew <= moment <= self.at + timedelta(days=window_days)


@dataclass(frozen=True, slots=True)
class ClickCount:
    """How many clicks a referrer's links had on one UTC day: a cell of the funnel."""

    day: date
    referrer_id: str
    clicks: int


def day_of(moment: datetime) -> date:
    """The UTC day of `moment`: clicks are counted per UTC day."""
    return moment.astimezone(UTC).date()


def days_between(since: datetime, until: datetime) -> list[date]:
    """The UTC days that [since, until) touches, in order."""
    if until <= since:
        return []
    first, last = day_of(since), day_of(until - timedelta(microseconds=1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


TRACKING_PARAMETERS = ("ref", "click_id")


def tracked_url(landing_url: str, code: str, click_id: str | None) -> str:
    """`landing_url` with `ref=<code>` (and `click_id=<id>` if given) in its query. The
    URL's own parameters are kept as they are written (not decoded and encoded again),
    but for any `ref` or `click_id` of its own, which these replace; the fragment stays
    last."""
    parts = urlsplit(landing_url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) not in TRACKING_PARAMETERS
    ]
    added = [f"ref={quote(code, safe='')}"]
    if click_id is not None:
        added.append(f"click_id={quote(click_id, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept + added)))
