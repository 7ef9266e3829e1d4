"""Reward details with their receipts, the review queue's decisions, and the audit log."""

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from referrals.api.schemas.common import Reason, RequestBody
from referrals.api.schemas.signups import ReferralOut
from referrals.domain.model import AuditEntry, Referral, ReferralStatus, Reward, RewardKind
from referrals.services.queries import Page
from referrals.services.sales import HeldShare


class CheckOut(BaseModel):
    name: str
    passed: bool
    detail: str
    shadow: bool = Field(
        False, description="run in shadow mode: its verdict is kept, the reward is not held for it"
    )


class TierOut(BaseModel):
    threshold: int
    reward_cents: int


class ReceiptOut(BaseModel):
    """How the reward was priced and which fraud checks it passed or failed."""

    rule: str
    tier: TierOut
    hold_days: int
    checks: list[CheckOut]
    cap: str | None = Field(
        None, description="the cap (monthly or lifetime) that cut the tier's amount, if any"
    )
    program: str = Field(description="the program whose rules priced it")
    rule_version: int = Field(description="the version of those rules that priced it")


class EntryOut(BaseModel):
    """A payout entry that came from the referral besides its own reward."""

    id: str
    user_id: str
    kind: RewardKind
    cents: int
    status: ReferralStatus
    payable_at: datetime
    payout_period: str | None
    note: str | None

    model_config = ConfigDict(from_attributes=True)  # read straight off a Reward


class ReferralDetail(ReferralOut):
    receipt: ReceiptOut | None
    note: str | None
    entries: list[EntryOut] = Field(
        default_factory=list, description="the referee's reward and any clawbacks"
    )

    @classmethod
    def of(cls, r: Referral, entries: Sequence[Reward] = ()) -> "ReferralDetail":
        receipt = None
        if r.receipt is not None:
            receipt = ReceiptOut(
                rule=r.receipt.rule,
                tier=TierOut(threshold=r.receipt.tier_threshold, reward_cents=r.receipt.tier_cents),
                hold_days=r.receipt.hold_days,
                checks=[CheckOut(**asdict(check)) for check in r.receipt.checks],
                cap=r.receipt.cap,
                program=r.receipt.program,
                rule_version=r.receipt.rule_version,
            )
        return cls(
            **ReferralOut.of(r).model_dump(),
            receipt=receipt,
            note=r.note,
            entries=[EntryOut.model_validate(e) for e in entries],
        )


class ReviewPage(BaseModel):
    """Held rewards, oldest first, each with the receipt that says why it is held."""

    items: list[ReferralDetail]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Referral]) -> "ReviewPage":
        return cls(items=[ReferralDetail.of(r) for r in page.items], next_cursor=page.next_cursor)


class HeldShareOut(BaseModel):
    """A sale's revenue share held for review."""

    id: str
    sale_id: str
    referral_id: str
    program_id: str
    user_id: str = Field(description="the referrer it is owed to")
    cents: int = Field(description="in the minor units of the program's currency")
    payable_at: datetime
    note: str | None = Field(description="why it is held: the dispute's reason")
    with_referral: bool = Field(
        description="held from its start with its referral (a fraud check): approved or "
        "rejected with the referral (/v1/reviews/{referral_id}/...); otherwise held by a "
        "dispute, decided by POST /v1/sales/{sale_id}/share/{approve|reject}"
    )

    @classmethod
    def of(cls, held: HeldShare) -> "HeldShareOut":
        share = held.share
        return cls(
            id=share.id,
            sale_id=share.sale_id or "",  # a share always names its sale
            referral_id=share.referral_id,
            program_id=share.program_id,
            user_id=share.user_id,
            cents=share.cents,
            payable_at=share.payable_at,
            note=share.note,
            with_referral=held.with_referral,
        )


class HeldSharePage(BaseModel):
    """Revenue shares held for review, oldest first."""

    items: list[HeldShareOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[HeldShare]) -> "HeldSharePage":
        return cls(items=[HeldShareOut.of(h) for h in page.items], next_cursor=page.next_cursor)


class Decision(RequestBody):
    reason: Reason | None = None


class ReasonRequired(RequestBody):
    reason: Reason


class AuditEntryOut(BaseModel):
    id: str
    at: datetime
    actor: str = Field(description="The id of the API key that acted")
    action: str
    target: str
    reason: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[AuditEntry]) -> "AuditPage":
        items = [AuditEntryOut(**asdict(entry)) for entry in page.items]
        return cls(items=items, next_cursor=page.next_cursor)
