"""Sales and refunds as the API takes and gives them; amounts in integer minor units."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints

from referrals.api.schemas.common import ProgramId, RequestBody, UserId, WholeNumber
from referrals.api.schemas.reviews import ReceiptOut, TierOut
from referrals.domain.model import DEFAULT_PROGRAM
from referrals.domain.program import currencies
from referrals.domain.sales import MAX_AMOUNT, Refund, Sale, SaleKind
from referrals.services.sales import RefundIn, SaleIn

EXTERNAL_ID = r"^[\x21-\x7e]+$"  # the billing system's id: visible ASCII
ExternalId = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=EXTERNAL_ID)
]


def _known_currency(code: str) -> str:
    if code not in currencies():
        raise ValueError("an ISO 4217 currency code, e.g. USD")
    return code


Currency = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^[A-Z]{3}$"),
    AfterValidator(_known_currency),
    Field(
        description="ISO 4217, upper case; must be the program's (400 currency_mismatch)",
        json_schema_extra={"enum": sorted(currencies())},
    ),
]


class SaleRequest(RequestBody):
    external_id: ExternalId = Field(
        description="The billing system's id of the sale (an invoice, a charge): sending it "
        "again is a safe replay; another sale under it is refused (409 sale_conflict)"
    )
    user_id: UserId
    amount_minor: Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT), WholeNumber] = Field(
        description="What the user paid, in the currency's minor unit (cents)"
    )
    currency: Currency
    occurred_at: AwareDatetime = Field(description="When the sale occurred: not in the future")
    kind: SaleKind = SaleKind.PURCHASE
    program_id: ProgramId = Field(
        DEFAULT_PROGRAM, description="The program whose referral of the user it is credited to"
    )

    def sale(self) -> SaleIn:
        return SaleIn(
            self.external_id,
            self.user_id,
            self.amount_minor,
            self.currency,
            self.occurred_at,
            self.kind,
            self.program_id,
        )


class RefundRequest(RequestBody):
    sale_external_id: ExternalId
    amount_minor: Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT), WholeNumber] = Field(
        description="What is refunded, in minor units: with the sale's earlier refunds, at "
        "most the sale (409 refund_exceeds_sale)"
    )
    external_id: ExternalId | None = Field(
        None,
        description="The billing system's refund id: with it, sending the refund again is a "
        "safe replay. Without it, every request is a new refund",
    )
    occurred_at: AwareDatetime | None = Field(None, description="Default: now")

    def refund(self) -> RefundIn:
        return RefundIn(
            self.sale_external_id, self.amount_minor, self.external_id, self.occurred_at
        )


class ShareOut(BaseModel):
    """The revenue share a sale earned its referrer."""

    reward_id: str | None = Field(description="The payout entry; null if the caps left nothing")
    bps: int = Field(description="Basis points of the sale, by the referrer's tier")
    ceiling_minor: int = Field(description="The most a sale earns; 0: no ceiling")
    awarded_minor: int = Field(description="The share as priced, after the caps")
    receipt: ReceiptOut


class SaleOut(BaseModel):
    external_id: str
    user_id: str
    program_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    kind: SaleKind
    referral_id: str | None = Field(description="Null: no referral of the user (unattributed)")
    referrer_id: str | None
    refunded_minor: int
    created_at: datetime
    share: ShareOut | None

    @classmethod
    def of(cls, s: Sale) -> "SaleOut":
        share = None
        if s.receipt is not None:
            receipt = ReceiptOut(
                rule=s.receipt.rule,
                tier=TierOut(threshold=s.receipt.tier_threshold, reward_cents=s.receipt.tier_cents),
                hold_days=s.receipt.hold_days,
                checks=[],
                cap=s.receipt.cap,
                program=s.receipt.program,
                rule_version=s.receipt.rule_version,
            )
            share = ShareOut(
                reward_id=s.reward_id,
                bps=s.share_bps,
                ceiling_minor=s.share_ceiling_minor,
                awarded_minor=s.awarded_minor,
                receipt=receipt,
            )
        return cls(
            external_id=s.external_id,
            user_id=s.user_id,
            program_id=s.program_id,
            amount_minor=s.amount_minor,
            currency=s.currency,
            occurred_at=s.occurred_at,
            kind=s.kind,
            referral_id=s.referral_id,
            referrer_id=s.referrer_id,
            refunded_minor=s.refunded_minor,
            created_at=s.created_at,
            share=share,
        )


class RefundOut(BaseModel):
    id: str
    sale_external_id: str
    external_id: str | None
    amount_minor: int
    reversed_minor: int = Field(description="The share of the sale this refund took back")
    occurred_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, r: Refund) -> "RefundOut":
        return cls(
            id=r.id,
            sale_external_id=r.sale_external_id,
            external_id=r.external_id,
            amount_minor=r.amount_minor,
            reversed_minor=r.reversed_minor,
            occurred_at=r.occurred_at,
            created_at=r.created_at,
        )
