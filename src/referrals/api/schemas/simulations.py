"""The simulator's and the checks report's bodies: what is asked, and what is answered."""

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from referrals.api.schemas.common import RequestBody, WholeNumber
from referrals.api.schemas.programs import Rules
from referrals.domain.checks_report import CheckRow, ChecksReport, Outcomes
from referrals.domain.simulation import Simulation, Totals
from referrals.services.simulations import MAX_MOVERS

WINDOW_START = "From this instant (RFC 3339, with a time zone)"
WINDOW_END = "To this instant, excluded: at most 366 days after `from`"


class SimulationRequest(RequestBody):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime = Field(alias="from", description=WINDOW_START)
    end: AwareDatetime = Field(alias="to", description=WINDOW_END)
    rules: Rules | None = Field(
        None,
        description="The proposed rule version, as `POST /v1/programs/{id}/rules` takes it, "
        "priced from `from` on. Left out: the versions that actually priced the window "
        "(a backtest, which reproduces what was earned)",
    )
    limit: Annotated[int, Field(strict=True, ge=1, le=MAX_MOVERS), WholeNumber] = Field(
        20, description="How many referrers to list, the largest changes first"
    )


class TierOut(BaseModel):
    threshold: int
    reward_cents: int
    count: int
    cents: int


class TotalsOut(BaseModel):
    count: int = Field(description="Rewards earned in the window")
    earned_cents: int = Field(description="After the caps, held rewards included")
    held_count: int = Field(description="Held for review by a check in hold mode")
    held_cents: int
    capped_count: int
    capped_cents: int = Field(description="What the caps cut")
    referee_cents: int = Field(description="The referees' own rewards")
    tiers: list[TierOut]

    @classmethod
    def of(cls, totals: Totals) -> "TotalsOut":
        return cls(
            count=totals.count,
            earned_cents=totals.earned_cents,
            held_count=totals.held_count,
            held_cents=totals.held_cents,
            capped_count=totals.capped_count,
            capped_cents=totals.capped_cents,
            referee_cents=totals.referee_cents,
            tiers=[
                TierOut(
                    threshold=t.threshold, reward_cents=t.reward_cents, count=t.count, cents=t.cents
                )
                for t in totals.tiers
            ],
        )


class ReferrerDiffOut(BaseModel):
    referrer_id: str
    actual_count: int
    actual_cents: int
    actual_held_cents: int
    simulated_count: int
    simulated_cents: int
    simulated_held_cents: int
    change_cents: int


class SimulationOut(BaseModel):
    program_id: str
    window_from: datetime = Field(serialization_alias="from")
    window_to: datetime = Field(serialization_alias="to")
    backtest: bool = Field(description="Priced by the versions that actually priced the window")
    scanned: int = Field(description="Referrals read: the program's history up to `to`")
    actual: TotalsOut
    simulated: TotalsOut
    referrers: int = Field(description="Referrers with a reward in the window, either way")
    changed: int = Field(description="...whose count, amount or held amount differs")
    movers: list[ReferrerDiffOut] = Field(description="The largest changes first")
    unjudged: int = Field(
        description="Rewards a check of the proposal has no recorded verdict for (it did not "
        "run when they were priced): counted as passed"
    )

    @classmethod
    def of(cls, program_id: str, result: Simulation, backtest: bool) -> "SimulationOut":
        return cls(
            program_id=program_id,
            window_from=result.window.start,
            window_to=result.window.end,
            backtest=backtest,
            scanned=result.scanned,
            actual=TotalsOut.of(result.actual),
            simulated=TotalsOut.of(result.simulated),
            referrers=result.referrers,
            changed=result.changed,
            movers=[
                ReferrerDiffOut(
                    referrer_id=d.referrer_id,
                    actual_count=d.actual_count,
                    actual_cents=d.actual_cents,
                    actual_held_cents=d.actual_held_cents,
                    simulated_count=d.simulated_count,
                    simulated_cents=d.simulated_cents,
                    simulated_held_cents=d.simulated_held_cents,
                    change_cents=d.change_cents,
                )
                for d in result.movers
            ],
            unjudged=result.unjudged,
        )


class OutcomesOut(BaseModel):
    rewards: int
    rejected: int = Field(description="Refused in review")
    reversed: int = Field(description="Reversed, or clawed back once paid")
    approved: int = Field(description="Approved in review or never held: pending or paid")
    in_review: int
    awaiting: int = Field(description="Awaiting a conversion")

    @classmethod
    def of(cls, outcomes: Outcomes) -> "OutcomesOut":
        return cls(
            rewards=outcomes.rewards,
            rejected=outcomes.rejected,
            reversed=outcomes.reversed,
            approved=outcomes.approved,
            in_review=outcomes.in_review,
            awaiting=outcomes.awaiting,
        )


class CheckRowOut(BaseModel):
    check: str
    mode: str = Field(description="The mode its verdicts were given in: shadow or hold")
    checked: int
    flagged: OutcomesOut
    passed: OutcomesOut
    precision: float | None = Field(
        description="Of the flagged rewards decided, the share rejected or reversed"
    )
    baseline: float | None = Field(description="The same share among the rewards it passed")

    @classmethod
    def of(cls, row: CheckRow) -> "CheckRowOut":
        return cls(
            check=row.name,
            mode=row.mode,
            checked=row.checked,
            flagged=OutcomesOut.of(row.flagged),
            passed=OutcomesOut.of(row.passed),
            precision=row.precision,
            baseline=row.baseline,
        )


class ChecksReportOut(BaseModel):
    program_id: str
    window_from: datetime = Field(serialization_alias="from")
    window_to: datetime = Field(serialization_alias="to")
    scanned: int
    rewards: int = Field(description="Referrals signed up in the window")
    checks: list[CheckRowOut]

    @classmethod
    def of(cls, program_id: str, report: ChecksReport) -> "ChecksReportOut":
        return cls(
            program_id=program_id,
            window_from=report.window.start,
            window_to=report.window.end,
            scanned=report.scanned,
            rewards=report.rewards,
            checks=[CheckRowOut.of(row) for row in report.rows],
        )
