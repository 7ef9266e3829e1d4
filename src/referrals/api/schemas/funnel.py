"""The funnel's answer (GET /v1/programs/{id}/funnel): domain.funnel's figures as JSON,
money in integer minor units of the program's currency."""

from datetime import date

from pydantic import BaseModel, Field

from referrals.domain.funnel import Funnel, Stages


class StagesOut(BaseModel):
    clicks: int = Field(description="Clicks on the program's tracked links (bots left out)")
    signups: int = Field(description="Referrals signed up")
    conversions: int = Field(description="Referred customers' purchases (renewals left out)")
    revenue_minor: int = Field(description="Attributed sales less their refunds")
    rewards_minor: int = Field(description="Referral rewards earned, and revenue shares kept")
    signup_rate: float | None = Field(description="Signups per click; null without clicks")
    conversion_rate: float | None = Field(
        description="Conversions per signup; null without signups"
    )

    @classmethod
    def of(cls, stages: Stages) -> "StagesOut":
        return cls(
            clicks=stages.clicks,
            signups=stages.signups,
            conversions=stages.conversions,
            revenue_minor=stages.revenue_minor,
            rewards_minor=stages.rewards_minor,
            signup_rate=stages.signup_rate,
            conversion_rate=stages.conversion_rate,
        )


class FunnelDayOut(StagesOut):
    day: date


class FunnelReferrerOut(StagesOut):
    referrer_id: str


class UnattributedOut(BaseModel):
    sales: int = Field(description="Sales of users the program did not refer")
    revenue_minor: int


class FunnelOut(BaseModel):
    program_id: str
    currency: str
    first_day: date = Field(serialization_alias="from")
    end_day: date = Field(serialization_alias="to", description="Excluded")
    total: StagesOut
    k_factor: float | None = Field(
        description="Invites per active referrer x signups per invite: signups per referrer"
        " with a click or a signup in the window"
    )
    cost_per_signup_minor: int | None = Field(description="Rewards per signup, rounded down")
    active_referrers: int
    referrer_count: int = Field(description="Referrers with any figure, listed or not")
    unattributed: UnattributedOut
    days: list[FunnelDayOut] = Field(description="Every UTC day of the window, oldest first")
    referrers: list[FunnelReferrerOut] = Field(
        description="The `limit` referrers with the most signups, then clicks"
    )

    @classmethod
    def of(cls, program_id: str, result: Funnel) -> "FunnelOut":
        return cls(
            program_id=program_id,
            currency=result.currency,
            first_day=result.start,
            end_day=result.end,
            total=StagesOut.of(result.total),
            k_factor=result.k_factor,
            cost_per_signup_minor=result.cost_per_signup_minor,
            active_referrers=result.active_referrers,
            referrer_count=result.referrer_count,
            unattributed=UnattributedOut(
                sales=result.unattributed_sales,
                revenue_minor=result.unattributed_revenue_minor,
            ),
            days=[
                FunnelDayOut(day=d.day, **StagesOut.of(d.stages).model_dump()) for d in result.days
            ],
            referrers=[
                FunnelReferrerOut(referrer_id=r.referrer_id, **StagesOut.of(r.stages).model_dump())
                for r in result.referrers
            ],
        )
