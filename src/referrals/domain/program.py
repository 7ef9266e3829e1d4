"""Programs as data: a program, and the chain of immutable rule versions that price it.

A reward is priced by the rule version in force when it is earned, and its receipt
names the program and the version, so a rule change never reprices what was earned
and every reward says which rules made it.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from referrals.domain.checks import FraudChecks
from referrals.domain.errors import InvalidInput
from referrals.domain.model import DEFAULT_PROGRAM as DEFAULT_PROGRAM
from referrals.domain.model import CapCounted
from referrals.domain.sales import MAX_SHARE_MONTHS, NO_SHARE, ShareTier, ShareTiers
from referrals.domain.tiers import DEFAULT_TIERS, Tier, TierSchedule

# The default program's first version prices everything recorded before programs
# existed: it is in force from the beginning of time.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_TIERS = 50
MAX_NAME = 120
MAX_TEMPLATE = 500
MAX_LANDING_URL = 500
MAX_ATTRIBUTION_DAYS = 365
DEFAULT_ATTRIBUTION_DAYS = 30


class Trigger(StrEnum):
    SIGNUP = "signup"  # a referral earns its reward when the referee signs up
    CONVERSION = "conversion"  # ...when the referee does the qualifying event


class Attribution(StrEnum):
    """Which click a visitor's signup is credited to when they clicked several links."""

    FIRST = "first"  # the first click within the window keeps the credit
    LAST = "last"  # each new click takes it over


class ProgramStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # refuses new signups, keeps paying what was earned
    ARCHIVED = "archived"  # as paused, for good


@dataclass(frozen=True, slots=True)
class RuleVersion:
    """One immutable version of a program's rules, in force from `effective_from`
    until the next version's. Version numbers count from 1 per program."""

    tiers: TierSchedule = DEFAULT_TIERS
    # A referred user becomes a referrer at once, so the signup can hand them a code.
    auto_enroll_referees: bool = True
    # A reward becomes payable this long after it is earned (time for refunds and disputes).
    hold: timedelta = timedelta(0)
    checks: FraudChecks = field(default_factory=FraudChecks)
    referee_reward_cents: int = 0  # the referee's own reward (double-sided); 0: none
    # A user is paid once their total in a run reaches this; below it, it carries forward.
    minimum_payout_cents: int = 0
    trigger: Trigger = Trigger.SIGNUP
    conversion_event: str = "purchase"  # the event that qualifies a referral
    conversion_min_cents: int = 0  # ...with at least this value
    # ...within this many days of the signup; 0: whenever it comes.
    conversion_window_days: int = 0
    # The most a referrer earns from their referrals in a calendar month (UTC) and in
    # all; 0: no cap. A referral past a cap still counts toward the tiers.
    monthly_cap_cents: int = 0
    lifetime_cap_cents: int = 0
    # A revenue share (domain.sales): basis points of each sale of a referred user, by
    # the referrer's referral count (none: no share), for the sales within
    # `share_months` of the signup (0: for life), at most `share_ceiling_cents` a sale
    # (0: no ceiling). The caps above apply to it too.
    share_tiers: ShareTiers = NO_SHARE
    share_months: int = 0
    share_ceiling_cents: int = 0
    program_id: str = DEFAULT_PROGRAM
    version: int = 1
    effective_from: datetime = BEGINNING
    created_at: datetime = BEGINNING

    def __post_init__(self) -> None:
        _require(self.version >= 1, "version", "versions count from 1")
        _require(self.effective_from.tzinfo is not None, "effective_from", "needs a time zone")
        amounts = (
            ("referee_reward_cents", self.referee_reward_cents),
            ("minimum_payout_cents", self.minimum_payout_cents),
            ("conversion_min_cents", self.conversion_min_cents),
            ("monthly_cap_cents", self.monthly_cap_cents),
            ("lifetime_cap_cents", self.lifetime_cap_cents),
            ("conversion_window_days", self.conversion_window_days),
            ("checks.velocity_per_hour", self.checks.velocity_per_hour),
            ("share.months", self.share_months),
            ("share.ceiling_cents", self.share_ceiling_cents),
        )
        for name, amount in amounts:
            _require(amount >= 0, name, "cannot be negative")
        _require(self.hold >= timedelta(0), "hold_days", "cannot be negative")
        _require(len(self.tiers.tiers) <= MAX_TIERS, "tiers", f"at most {MAX_TIERS} tiers")
        _require(0 < len(self.conversion_event) <= 64, "conversion_event", "1-64 characters")
        months = f"at most {MAX_SHARE_MONTHS}"
        _require(self.share_months <= MAX_SHARE_MONTHS, "share.months", months)

    def capped(self, cents: int, referrer: CapCounted, month: str) -> tuple[int, str | None]:
        """What a reward of `cents` earned in `month` pays under the caps, given what
        `referrer` has earned, and the cap that cut it (None if none did).

        A month before the one the referrer's counter holds (an import of history)
        is checked against the lifetime cap only: the counter keeps one month.
        """
        allowed, cap = cents, None
        if self.monthly_cap_cents:
            earned = referrer.earned_in(month)
            if earned is not None and self.monthly_cap_cents - earned < allowed:
                allowed, cap = max(0, self.monthly_cap_cents - earned), "monthly"
        if self.lifetime_cap_cents:
            room = max(0, self.lifetime_cap_cents - referrer.cap_lifetime_cents)
            if room < allowed:
                allowed, cap = room, "lifetime"
        return allowed, cap

    def qualifies(
        self, event: str, value_cents: int | None, signed_up_at: datetime, at: datetime
    ) -> bool:
        """Whether a conversion `event` worth `value_cents`, done `at`, earns the reward
        of a referral signed up at `signed_up_at` (a conversion reported before the
        signup is within any window)."""
        window = timedelta(days=self.conversion_window_days)
        return (
            self.trigger is Trigger.CONVERSION
            and event == self.conversion_event
            and (value_cents or 0) >= self.conversion_min_cents
            and (not self.conversion_window_days or at - signed_up_at <= window)
        )

    def to_dict(self) -> dict[str, Any]:
        """The rules, as the API shows them and the stores keep them (without the
        version's identity: program, number and times are their own fields)."""
        return {
            "trigger": self.trigger.value,
            "conversion": {
                "event": self.conversion_event,
                "min_cents": self.conversion_min_cents,
                "window_days": self.conversion_window_days,
            },
            "tiers": [
                {"threshold": t.threshold, "reward_cents": t.reward_cents} for t in self.tiers.tiers
            ],
            "referee_reward_cents": self.referee_reward_cents,
            "hold_days": self.hold.days,
            "monthly_cap_cents": self.monthly_cap_cents,
            "lifetime_cap_cents": self.lifetime_cap_cents,
            "minimum_payout_cents": self.minimum_payout_cents,
            "auto_enroll_referees": self.auto_enroll_referees,
            "checks": self.checks.to_dict(),
            "share": {
                "tiers": [{"threshold": t.threshold, "bps": t.bps} for t in self.share_tiers.tiers],
                "months": self.share_months,
                "ceiling_cents": self.share_ceiling_cents,
            },
        }

    @classmethod
    def from_dict(cls, rules: Mapping[str, Any], **identity: Any) -> "RuleVersion":
        """Rules from `to_dict`'s shape (validated by the API's schema first), with the
        version's identity (`program_id`, `version`, `effective_from`, `created_at`)."""
        conversion = rules.get("conversion") or {}
        share = rules.get("share") or {}  # absent from versions stored before shares
        tiers = tuple(Tier(t["threshold"], t["reward_cents"]) for t in rules["tiers"])
        return cls(
            tiers=_schedule(tiers),
            trigger=Trigger(rules.get("trigger", "signup")),
            conversion_event=conversion.get("event", "purchase"),
            conversion_min_cents=conversion.get("min_cents", 0),
            conversion_window_days=conversion.get("window_days", 0),
            referee_reward_cents=rules.get("referee_reward_cents", 0),
            hold=timedelta(days=rules.get("hold_days", 0)),
            monthly_cap_cents=rules.get("monthly_cap_cents", 0),
            lifetime_cap_cents=rules.get("lifetime_cap_cents", 0),
            minimum_payout_cents=rules.get("minimum_payout_cents", 0),
            auto_enroll_referees=rules.get("auto_enroll_referees", True),
            checks=FraudChecks.from_dict(rules.get("checks") or {}),
            share_tiers=ShareTiers(
                tuple(ShareTier(t["threshold"], t["bps"]) for t in share.get("tiers", ()))
            ),
            share_months=share.get("months", 0),
            share_ceiling_cents=share.get("ceiling_cents", 0),
            **identity,
        )


@dataclass(frozen=True, slots=True)
class Program:
    id: str
    name: str
    currency: str = "USD"  # ISO 4217; amounts are integer minor units of it
    status: ProgramStatus = ProgramStatus.ACTIVE
    # Where a referrer's link points; `{code}` is replaced by their code.
    share_url_template: str | None = None
    created_at: datetime = BEGINNING
    # Where a tracked link (`/l/{code}`) sends its visitor, with `ref` and `click_id`
    # added to its query; None: the program has no tracked links.
    landing_url: str | None = None
    # How long a click can still be credited with a signup, and which click is.
    attribution_window_days: int = DEFAULT_ATTRIBUTION_DAYS
    attribution: Attribution = Attribution.FIRST

    def __post_init__(self) -> None:
        _require(
            is_valid_program_id(self.id),
            "id",
            "1-64 of [a-z0-9-], starting and ending with a letter or digit",
        )
        _require(0 < len(self.name) <= MAX_NAME, "name", f"1-{MAX_NAME} characters")
        _require(self.currency in currencies(), "currency", "an ISO 4217 currency code, e.g. USD")
        template = self.share_url_template
        if template is not None:
            _require(
                len(template) <= MAX_TEMPLATE,
                "share_url_template",
                f"at most {MAX_TEMPLATE} characters",
            )
            _require(
                template.startswith(("https://", "http://")), "share_url_template", "an http(s) URL"
            )
            _require("{code}" in template, "share_url_template", "must contain {code}")
        if self.landing_url is not None:
            _require(is_landing_url(self.landing_url), "landing_url", LANDING_URL_RULE)
        _require(
            1 <= self.attribution_window_days <= MAX_ATTRIBUTION_DAYS,
            "attribution_window_days",
            f"1-{MAX_ATTRIBUTION_DAYS} days",
        )

    @property
    def takes_signups(self) -> bool:
        return self.status is ProgramStatus.ACTIVE


def is_valid_program_id(value: str) -> bool:
    return bool(_SLUG.match(value))


LANDING_URL_RULE = f"an http(s) URL with a host, at most {MAX_LANDING_URL} characters"
# An absolute http(s) URL: a host, then anything but whitespace and control characters.
LANDING_URL_PATTERN = r"^https?://[^\s/?#\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*$"
_LANDING_URL = re.compile(LANDING_URL_PATTERN)


def is_landing_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace: a redirect's Location."""
    return len(value) <= MAX_LANDING_URL and bool(_LANDING_URL.fullmatch(value))


def in_force(versions: Sequence[RuleVersion], at: datetime) -> RuleVersion | None:
    """The version of `versions` (in version order) in force at `at`: the last one whose
    `effective_from` is not after it; None before the first."""
    current = None
    for version in versions:
        if version.effective_from > at:
            break
        current = version
    return current


def next_version(
    versions: Sequence[RuleVersion], proposed: RuleVersion, now: datetime
) -> RuleVersion:
    """`proposed` as the version after `versions`: numbered next, and in force from an
    instant not in the past nor before the last version's (a chain in time order)."""
    _require(proposed.effective_from >= now, "effective_from", "cannot be in the past")
    last = versions[-1] if versions else None
    if last is not None:
        _require(
            proposed.effective_from > last.effective_from,
            "effective_from",
            f"must be after version {last.version}'s ({last.effective_from.isoformat()})",
        )
    number = last.version + 1 if last else 1
    return replace(proposed, version=number, created_at=now)


@cache
def currencies() -> frozenset[str]:
    """ISO 4217's active codes (domain/data/currencies.txt)."""
    text = files("referrals.domain").joinpath("data/currencies.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _schedule(tiers: tuple[Tier, ...]) -> TierSchedule:
    try:
        return TierSchedule(tiers)
    except InvalidInput as error:
        raise InvalidInput(error.detail, field="tiers") from None


def _require(condition: bool, name: str, detail: str) -> None:
    if not condition:
        raise InvalidInput(f"{name}: {detail}", field=name)
