"""Payout runs and their previews, and the notification events of the outbox."""

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from referrals.api.schemas.common import Period, RequestBody
from referrals.domain.model import (
    CurrencyTotal,
    Event,
    EventStatus,
    LineKind,
    PayoutLine,
    PayoutRun,
    Referral,
    RunStatus,
)
from referrals.domain.money import DEFAULT_CURRENCY, exponent
from referrals.services.payouts import HELD_SHOWN, PayoutPreview


class PayoutRequest(RequestBody):
    period: Period | None = Field(
        None, description="YYYY-MM, a month that has ended (400 otherwise); default: the last one."
    )
    dry_run: StrictBool = False


class CurrencyTotalOut(BaseModel):
    """What a run settled in one currency: the lines of its programs in that currency."""

    currency: str = Field(description="ISO 4217")
    exponent: int = Field(description="decimals of the currency's minor unit: USD 2, JPY 0")
    referrer_count: int = Field(description="users paid in this currency")
    referral_count: int = Field(description="entries settled: rewards and clawbacks")
    total_cents: int = Field(description="paid out: rewards less clawbacks, in minor units")
    clawback_cents: int = Field(description="taken back by clawback lines, in minor units")
    carried_forward_cents: int = Field(
        description="left for a later run (below the minimum), in minor units"
    )

    @classmethod
    def of(cls, total: CurrencyTotal) -> "CurrencyTotalOut":
        return cls(exponent=exponent(total.currency), **asdict(total))


_SINGLE = (
    " in the run's one currency (`totals`); null when the run holds several currencies,"
    " which are never summed: read `totals`"
)
Totals = Field(description="per currency, sorted: what is paid, taken back and carried forward")


class PayoutRunOut(BaseModel):
    period: str
    status: RunStatus
    cutoff: datetime
    referrer_count: int = Field(description="users paid, whatever the currency")
    referral_count: int = Field(description="entries settled, whatever the currency")
    total_cents: int | None = Field(description="paid out: rewards less clawbacks," + _SINGLE)
    clawback_cents: int | None = Field(description="taken back by clawback lines," + _SINGLE)
    carried_forward_cents: int | None = Field(
        description="left for a later run: below the minimum," + _SINGLE
    )
    totals: list[CurrencyTotalOut] = Totals
    report_key: str | None
    report_sha256: str | None
    previous_period: str | None = Field(
        description="the run completed just before this one: the chain by completion"
    )
    previous_sha256: str | None = Field(description="the report sha256 of `previous_period`")
    previous_month_period: str | None = Field(
        description="the latest earlier month completed before this run: the chain by month"
    )
    previous_month_sha256: str | None = Field(
        description="the report sha256 of `previous_month_period`"
    )
    started_at: datetime
    completed_at: datetime | None
    error: str | None = Field(
        description="why a failed run failed, or why a completed run's report is not"
        " published yet (then `report_published` is false)"
    )
    report_published: bool = Field(
        description="completed, with its report and manifest in the report store; a"
        " completed run's report not published yet is published by the schedule, the"
        " next run of the period or a request for the report"
    )

    @classmethod
    def of(cls, run: PayoutRun) -> "PayoutRunOut":
        return cls(
            period=run.period,
            status=run.status,
            cutoff=run.cutoff,
            referrer_count=run.referrer_count,
            referral_count=run.referral_count,
            total_cents=run.total_cents,
            clawback_cents=run.clawback_cents,
            carried_forward_cents=run.carried_forward_cents,
            totals=[CurrencyTotalOut.of(total) for total in run.totals],
            report_key=run.report_key,
            report_sha256=run.report_sha256,
            previous_month_period=run.previous_month_period,
            previous_month_sha256=run.previous_month_sha256,
            previous_period=run.previous_period,
            previous_sha256=run.previous_sha256,
            started_at=run.started_at,
            completed_at=run.completed_at,
            error=run.error,
            report_published=run.report_published,
        )


class PayoutStartedOut(BaseModel):
    """A run started where it can outlast the request (AWS: the payout state machine)."""

    period: str
    status: Literal["started"] = Field(
        description="the run is started, or was already under way: `url` shows it, 404"
        " until its first step claims the period (seconds), then `running` until"
        " `completed` (or `failed`, retried hourly)"
    )
    url: str = Field(description="the run: GET it until its status is completed (Location)")
    execution_arn: str = Field(description="the payout state machine's execution doing the run")


class PayoutLineOut(BaseModel):
    referrer_id: str
    referral_count: int
    amount_cents: int = Field(description="in minor units of `currency`")
    kind: LineKind
    program_id: str
    currency: str = Field(description="the program's (ISO 4217)")

    @classmethod
    def of(cls, line: PayoutLine, currencies: Mapping[str, str]) -> "PayoutLineOut":
        return cls(**asdict(line), currency=currencies.get(line.program_id, DEFAULT_CURRENCY))


class HeldOut(BaseModel):
    referral_id: str
    referrer_id: str
    program_id: str
    reward_cents: int = Field(description="in minor units of `currency`")
    currency: str = Field(description="the program's (ISO 4217)")
    reasons: list[str] = Field(description="the failed checks' details")

    @classmethod
    def of(cls, referral: Referral, currencies: Mapping[str, str]) -> "HeldOut":
        receipt = referral.receipt
        return cls(
            referral_id=referral.id,
            referrer_id=referral.referrer_id,
            program_id=referral.program_id,
            reward_cents=referral.reward_cents,
            currency=currencies.get(referral.program_id, DEFAULT_CURRENCY),
            reasons=[c.detail or c.name for c in receipt.failed] if receipt else [],
        )


class PayoutPreviewOut(BaseModel):
    period: str
    cutoff: datetime
    lines: list[PayoutLineOut]
    referrer_count: int
    referral_count: int
    total_cents: int | None = Field(description="what a run would pay," + _SINGLE)
    clawback_cents: int | None = Field(description="what it would take back," + _SINGLE)
    carried_forward: list[PayoutLineOut] = Field(
        description="users below the minimum payout (or owing): their entries wait"
    )
    carried_forward_cents: int | None = Field(description="what it would defer," + _SINGLE)
    totals: list[CurrencyTotalOut] = Totals
    held: list[HeldOut] = Field(description="the oldest rewards held for review, left out")
    held_count: int = Field(description=f"held rewards in all, counted up to {HELD_SHOWN + 1}")
    # Not `status`: a preview is told from a run by having none.
    run_status: RunStatus | None = Field(
        description="the period's run: `completed` (the preview is what it paid; running "
        "it again changes nothing), `running` or `failed` (a run resumes it); null: none yet"
    )
    completed_at: datetime | None = Field(description="when the period's run completed")

    @classmethod
    def of(cls, preview: PayoutPreview) -> "PayoutPreviewOut":
        return cls(
            period=preview.period,
            cutoff=preview.cutoff,
            lines=[PayoutLineOut.of(line, preview.currencies) for line in preview.lines],
            referrer_count=preview.referrer_count,
            referral_count=preview.referral_count,
            total_cents=preview.total_cents,
            clawback_cents=preview.clawback_cents,
            carried_forward=[
                PayoutLineOut.of(line, preview.currencies) for line in preview.carried_forward
            ],
            carried_forward_cents=preview.carried_forward_cents,
            totals=[CurrencyTotalOut.of(total) for total in preview.totals],
            held=[HeldOut.of(referral, preview.currencies) for referral in preview.held],
            held_count=preview.held_count,
            run_status=preview.status,
            completed_at=preview.completed_at,
        )


class PayoutRunList(BaseModel):
    items: list[PayoutRunOut]


class EventOut(BaseModel):
    id: str
    type: str
    data: dict[str, object] = Field(description="as in the webhook body (`data`)")
    payload: dict[str, object] = Field(
        deprecated=True, description="the same as `data`: its former name, kept for clients"
    )
    created_at: datetime
    status: EventStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, event: Event) -> "EventOut":
        return cls(
            id=event.id,
            type=event.type,
            data=dict(event.payload),
            payload=dict(event.payload),
            created_at=event.created_at,
            status=event.status,
            attempts=event.attempts,
            next_attempt_at=event.next_attempt_at,
            last_error=event.last_error,
        )


class EventList(BaseModel):
    items: list[EventOut]
