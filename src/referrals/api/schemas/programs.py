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
    MAX_NAME,
    MAX_TEMPLATE,
    MAX_TIERS,
    Program,
    ProgramStatus,
    RuleVersion,
    Trigger,
    currencies,
)
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
Currency = Annotated[
    str,
    Field(
        strict=True,
        description="ISO 4217; every amount of the program is in its minor unit. For now "
        f"{DEFAULT_CURRENCY} only: the currency payout runs pay in (a run never sums "
        "different currencies)",
        json_schema_extra={"enum": [DEFAULT_CURRENCY]},
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
    currency: Currency = "USD"
    share_url_template: ShareUrl | None = None
    rules: Rules = Field(default_factory=Rules)

    def program(self) -> Program:
        return Program(
            self.id, self.name, self.currency, share_url_template=self.share_url_template
        )


class ProgramChange(RequestBody):
    """Only the fields sent change; `share_url_template: null` removes it."""

    name: Name | None = None
    status: ProgramStatus | None = None
    share_url_template: ShareUrl | None = None


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
            created_at=p.created_at,
            current=RuleVersionOut.of(current) if current else None,
            scheduled=[RuleVersionOut.of(v) for v in view.scheduled(now)],
        )


class ProgramList(BaseModel):
    items: list[ProgramOut]
