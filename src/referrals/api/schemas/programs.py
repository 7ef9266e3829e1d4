"""Programs and their rule versions, as the API takes and gives them.

`Rules` is one schema both ways: what `GET` shows can be posted back as a new version.
Bounds are checked here (400 naming the field); what needs the whole rule set (tiers
in order) is checked by the domain, which names the field too.
"""

from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    model_validator,
)

from referrals.api.schemas.common import VISIBLE_TEXT, ProgramId, RequestBody, WholeNumber
from referrals.domain.checks import CheckMode
from referrals.domain.errors import InvalidInput
from referrals.domain.money import DEFAULT_CURRENCY
from referrals.domain.program import (
    DEFAULT_ATTRIBUTION_DAYS,
    LANDING_URL_PATTERN,
    LANDING_URL_RULE,
    MAX_ATTRIBUTION_DAYS,
    MAX_LANDING_URL,
    MAX_NAME,
    MAX_TEMPLATE,
    MAX_TIERS,
    Attribution,
    Program,
    ProgramStatus,
    RuleVersion,
    Trigger,
    currencies,
    is_landing_url,
)
from referrals.domain.sales import MAX_BPS, MAX_SHARE_MONTHS, MAX_SHARE_TIERS, ShareTier, ShareTiers
from referrals.domain.tiers import DEFAULT_TIERS, Tier, TierSchedule
from referrals.services.programs import ProgramView


def _known_currency(code: str) -> str:
    if code not in currencies():
        raise ValueError("an ISO 4217 currency code, e.g. USD")
    return code


Cents = Annotated[int, Field(strict=True, ge=0, le=10**12), WholeNumber]
Name = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_NAME, pattern=VISIBLE_TEXT)
]
ShareUrl = Annotated[
    str,
    StringConstraints(strict=True, max_length=MAX_TEMPLATE, pattern=r"^https?://\S*\{code\}\S*$"),
    Field(description="The referrer's share link; `{code}` is replaced by their code"),
]


def _landing_url(url: str) -> str:
    if not is_landing_url(url):
        raise ValueError(LANDING_URL_RULE)
    return url


LandingUrl = Annotated[
    str,
    StringConstraints(strict=True, max_length=MAX_LANDING_URL, pattern=LANDING_URL_PATTERN),
    AfterValidator(_landing_url),
    Field(
        description="Where a referrer's tracked link (`GET /l/{code}`) sends the visitor, "
        "with `ref=<code>` and `click_id=<id>` added to its query; without one the "
        "program has no tracked links"
    ),
]
WindowDays = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MAX_ATTRIBUTION_DAYS,
        description="How many days after a click a signup is still credited to it (and "
        "the snippet keeps it)",
    ),
    WholeNumber,
]
AttributionModel = Annotated[
    Attribution,
    Field(description="Which of a visitor's clicks is credited: the first or the last"),
]
Currency = Annotated[
    str,
    Field(
        strict=True,
        description="ISO 4217; every amount of the program is in its minor unit (cents for "
        "USD, yen for JPY), and it never changes. A payout run pays every program and "
        "keeps one total per currency: different currencies are never summed",
        json_schema_extra={"enum": sorted(currencies())},
    ),
    AfterValidator(_known_currency),
]


class TierRule(RequestBody):
    threshold: Annotated[int, Field(strict=True, ge=1, le=1_000_000), WholeNumber]
    reward_cents: Cents


class ConversionRule(RequestBody):
    event: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
    ] = "purchase"
    min_cents: Cents = 0
    window_days: Annotated[int, Field(strict=True, ge=0, le=3650), WholeNumber] = Field(
        0, description="A conversion later than this after the signup earns nothing; 0: any time"
    )


class CheckModes(RequestBody):
    email_alias: CheckMode = CheckMode.HOLD
    disposable_email: CheckMode = CheckMode.HOLD
    same_device: CheckMode = CheckMode.HOLD
    velocity: CheckMode = CheckMode.HOLD
    velocity_per_hour: Annotated[int, Field(strict=True, ge=0, le=100_000), WholeNumber] = Field(
        0, description="Flag beyond this many referrals an hour per referrer; 0: the check is off"
    )


class ShareTierRule(RequestBody):
    threshold: Annotated[int, Field(strict=True, ge=1, le=1_000_000), WholeNumber]
    bps: Annotated[int, Field(strict=True, ge=0, le=MAX_BPS), WholeNumber] = Field(
        description="Basis points of each sale: 1000 is 10 %"
    )


class ShareRule(RequestBody):
    """A revenue share: basis points of each sale of a referred user (`POST /v1/sales`),
    by the referrer's referral count; no tiers: no share. The caps apply to it."""

    tiers: list[ShareTierRule] = Field(
        default_factory=list,
        max_length=MAX_SHARE_TIERS,
        description="By referral count, as the reward tiers: from 1, strictly increasing",
    )
    months: Annotated[int, Field(strict=True, ge=0, le=MAX_SHARE_MONTHS), WholeNumber] = Field(
        0, description="Sales within this many months of the signup earn; 0: for life"
    )
    ceiling_cents: Cents = Field(0, description="The most one sale earns; 0: no ceiling")

    @model_validator(mode="after")
    def _tiers_in_order(self) -> Self:
        try:
            ShareTiers(tuple(ShareTier(t.threshold, t.bps) for t in self.tiers))
        except InvalidInput as error:
            raise ValueError(error.detail) from None
        return self


class Rules(RequestBody):
    """One version of a program's rules. `off` runs no check, `shadow` keeps its verdict
    on the receipt without holding the reward, `hold` holds a flagged reward for review."""

    trigger: Trigger = Trigger.SIGNUP
    # Defaults made by factories: a default instance would be spelled out in the OpenAPI
    # document, amounts and all.
    conversion: ConversionRule = Field(default_factory=ConversionRule)
    tiers: list[TierRule] = Field(
        default_factory=lambda: [
            TierRule(threshold=t.threshold, reward_cents=t.reward_cents)
            for t in DEFAULT_TIERS.tiers
        ],
        min_length=1,
        max_length=MAX_TIERS,
        description="By ordinal: the n-th referral earns the tier with the highest threshold <= n",
    )
    referee_reward_cents: Cents = 0
    hold_days: Annotated[int, Field(strict=True, ge=0, le=365), WholeNumber] = 0
    monthly_cap_cents: Cents = 0
    lifetime_cap_cents: Cents = 0
    minimum_payout_cents: Cents = 0
    auto_enroll_referees: Annotated[bool, Field(strict=True)] = True
    checks: CheckModes = Field(default_factory=CheckModes)
    share: ShareRule = Field(default_factory=ShareRule)

    @model_validator(mode="after")
    def _tiers_in_order(self) -> Self:
        # The domain's rule (from 1, strictly increasing), reported here as this body's
        # field.
        try:
            TierSchedule(tuple(Tier(t.threshold, t.reward_cents) for t in self.tiers))
        except InvalidInput as error:
            raise ValueError(f"tiers: {error.detail}") from None
        return self

    def version(self) -> RuleVersion:
        return RuleVersion.from_dict(self.model_dump(mode="json"))

    @classmethod
    def of(cls, version: RuleVersion) -> "Rules":
        return cls.model_validate(version.to_dict())


class ProgramCreate(RequestBody):
    id: ProgramId
    name: Name
    currency: Currency = DEFAULT_CURRENCY
    share_url_template: ShareUrl | None = None
    landing_url: LandingUrl | None = None
    attribution_window_days: WindowDays = DEFAULT_ATTRIBUTION_DAYS
    attribution: AttributionModel = Attribution.FIRST
    rules: Rules = Field(default_factory=Rules)

    def program(self) -> Program:
        return Program(
            self.id,
            self.name,
            self.currency,
            share_url_template=self.share_url_template,
            landing_url=self.landing_url,
            attribution_window_days=self.attribution_window_days,
            attribution=self.attribution,
        )


class ProgramChange(RequestBody):
    """Only the fields sent change; `share_url_template: null` and `landing_url: null`
    remove them."""

    name: Name | None = None
    status: ProgramStatus | None = None
    share_url_template: ShareUrl | None = None
    landing_url: LandingUrl | None = None
    attribution_window_days: WindowDays | None = None
    attribution: AttributionModel | None = None


class RulesSchedule(RequestBody):
    effective_from: AwareDatetime | None = Field(
        None, description="When the version takes effect: at least 5 s ahead; default: 5 s from now"
    )
    rules: Rules


class RuleVersionOut(BaseModel):
    program_id: str
    version: int
    effective_from: datetime
    created_at: datetime
    rules: Rules

    @classmethod
    def of(cls, version: RuleVersion) -> "RuleVersionOut":
        return cls(
            program_id=version.program_id,
            version=version.version,
            effective_from=version.effective_from,
            created_at=version.created_at,
            rules=Rules.of(version),
        )


class RuleVersionList(BaseModel):
    items: list[RuleVersionOut]


class ProgramOut(BaseModel):
    id: str
    name: str
    currency: str
    status: ProgramStatus
    share_url_template: str | None
    landing_url: str | None
    attribution_window_days: int
    attribution: Attribution
    created_at: datetime
    current: RuleVersionOut | None = Field(description="The rule version in force now")
    scheduled: list[RuleVersionOut] = Field(description="Versions that take effect later")

    @classmethod
    def of(cls, view: ProgramView, now: datetime) -> "ProgramOut":
        p, current = view.program, view.current(now)
        return cls(
            id=p.id,
            name=p.name,
            currency=p.currency,
            status=p.status,
            share_url_template=p.share_url_template,
            landing_url=p.landing_url,
            attribution_window_days=p.attribution_window_days,
            attribution=p.attribution,
            created_at=p.created_at,
            current=RuleVersionOut.of(current) if current else None,
            scheduled=[RuleVersionOut.of(v) for v in view.scheduled(now)],
        )


class ProgramList(BaseModel):
    items: list[ProgramOut]
