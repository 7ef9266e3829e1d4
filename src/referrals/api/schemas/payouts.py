"""Payout runs and their previews, and the notification events of the outbox."""

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from referrals.api.schemas.common import Period, RequestBody
from referrals.domain.model import Event, EventStatus, LineKind, PayoutRun, RunStatus
from referrals.services.payouts import HELD_SHOWN, PayoutPreview


class PayoutRequest(RequestBody):
    period: Period | None = Field(
        None, description="YYYY-MM, a month that has ended (400 otherwise); default: the last one."
    )
    dry_run: StrictBool = False


class PayoutRunOut(BaseModel):
    period: str
    status: RunStatus
    cutoff: datetime
    referrer_count: int
    referral_count: int
    total_cents: int = Field(description="paid out: rewards less clawbacks")
    clawback_cents: int = Field(description="taken back by clawback lines")
    carried_forward_cents: int = Field(description="left for a later run: below the minimum")
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
    amount_cents: int
    kind: LineKind
    program_id: str


class HeldOut(BaseModel):
    referral_id: str
    referrer_id: str
    reward_cents: int
    reasons: list[str] = Field(description="the failed checks' details")


class PayoutPreviewOut(BaseModel):
    period: str
    cutoff: datetime
    lines: list[PayoutLineOut]
    referrer_count: int
    referral_count: int
    total_cents: int
    clawback_cents: int
    carried_forward: list[PayoutLineOut] = Field(
        description="users below the minimum payout (or owing): their entries wait"
    )
    carried_forward_cents: int
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
            lines=[PayoutLineOut(**asdict(line)) for line in preview.lines],
            referrer_count=preview.referrer_count,
            referral_count=preview.referral_count,
            total_cents=preview.total_cents,
            clawback_cents=preview.clawback_cents,
            carried_forward=[PayoutLineOut(**asdict(line)) for line in preview.carried_forward],
            carried_forward_cents=preview.carried_forward_cents,
            held=[
                HeldOut(
                    referral_id=r.id,
                    referrer_id=r.referrer_id,
                    reward_cents=r.reward_cents,
                    reasons=[c.detail or c.name for c in r.receipt.failed] if r.receipt else [],
                )
                for r in preview.held
            ],
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
