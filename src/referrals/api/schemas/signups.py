"""Signups, referrers, referrals and conversions: what the ingest routes take and answer,
and what an ingest key may read of an answer (`IngestAnswer`)."""

from datetime import datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from referrals.api.schemas.common import (
    Code,
    DeviceId,
    Dollars,
    Email,
    IpAddress,
    ProgramId,
    RequestBody,
    UserId,
    WholeNumber,
)
from referrals.domain.clicks import CLICK_ID_LENGTH
from referrals.domain.model import DEFAULT_PROGRAM, Referral, ReferralStatus
from referrals.services.queries import Page, ReferrerStats

ClickId = Annotated[
    str,
    StringConstraints(
        strict=True,
        min_length=CLICK_ID_LENGTH,
        max_length=CLICK_ID_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
    ),
    Field(
        description="The tracked link's click the user came from (`click_id` of the landing "
        "URL, kept by the snippet): it gives the code if it was recorded within the "
        "program's attribution window, and the referral records it. One that was not "
        "attributes nothing: 404 `click_not_found` without a code, the code alone "
        "otherwise. Beside a code, it must be of that code's link: 409 `click_mismatch`."
    ),
]


class LegacySignupRequest(RequestBody):
    userId: UserId
    referralCode: Code
    email: Email | None = None
    clickId: ClickId | None = None


class LegacySignupResponse(BaseModel):
    message: str = "Signup successful"
    rewardAmount: Dollars
    referralCount: int
    referralId: str
    rewardCents: int
    refereeCode: str | None


class Fingerprints(RequestBody):
    """Where the user signed up from; kept only as hashes, to flag a referee who shares
    the referrer's IP address or device."""

    ip: IpAddress | None = None
    device_id: DeviceId | None = Field(None, description="A stable device identifier")


class EnrollRequest(Fingerprints):
    user_id: UserId
    email: Email | None = None
    code: Code | None = None


class SignupRequest(Fingerprints):
    # The schema states what the validator below checks: a code, a click id, or both.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("referral_code", "click_id")
            ]
        }
    )

    user_id: UserId
    # Before the code: the code's check reads it (fields are validated in this order).
    click_id: ClickId | None = None
    referral_code: Code | None = Field(
        None, description="Required unless click_id is sent", validate_default=True
    )
    email: Email | None = None
    signed_up_at: AwareDatetime | None = Field(
        None,
        description="Import a historical signup (admin keys only): from 1970-01-01T00:00:00Z,"
        " not in the future (400 otherwise).",
    )

    @field_validator("referral_code")
    @classmethod
    def _code_or_click(cls, code: str | None, info: ValidationInfo) -> str | None:
        # A missing code is this field's error, unless a click id stands in for it (a
        # click id that failed its own checks is missing from `data`: its error is enough).
        if code is None and info.data.get("click_id") is None and "click_id" in info.data:
            raise ValueError("referral_code or click_id is required")
        return code


class ConversionRequest(RequestBody):
    user_id: UserId
    event: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
    ]
    value_cents: Annotated[int, Field(strict=True, ge=0, le=10**12), WholeNumber] | None = None
    external_id: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ] = Field(description="Your id for this event: sending it again is a safe replay")
    program_id: ProgramId = Field(
        DEFAULT_PROGRAM, description="The program whose referral of the user it may qualify"
    )


class NextTier(BaseModel):
    at_count: int
    reward_cents: int


def sent_back(stored: str | None, sent: str | None) -> str | None:
    """The stored email if this request sent it, else None: all an ingest key may read
    of an email. A replayed signup or enrollment would otherwise read back what an
    earlier request stored, whoever sent it."""
    if stored is not None and sent is not None and stored.casefold() == sent.casefold():
        return stored
    return None


class IngestAnswer(BaseModel):
    """An answer an ingest key may get too. `for_ingest` is what the key may read of
    it: ids, codes, counts, statuses and the reward of the referral its request named,
    never an email it did not send nor a referrer's money. Admin keys read it all."""

    def for_ingest(self, sent_email: str | None) -> BaseModel:
        raise NotImplementedError


class ReferrerSummary(BaseModel):
    """A referrer as an ingest key reads it: no earnings, and `email` only if the
    request sent it (admin keys get the whole `ReferrerOut`)."""

    user_id: str
    program_id: str
    code: str
    email: str | None = Field(description="the email the request sent, if it is the one kept")
    referral_count: int
    created_at: datetime


class ReferrerOut(IngestAnswer):
    """A referrer with their earnings in the program, as an admin key reads it."""

    user_id: str
    program_id: str
    code: str
    email: str | None
    referral_count: int
    earned_cents: int = Field(description="pending + payable + held + paid - clawed back")
    pending_cents: int = Field(description="earned, still in the hold period")
    payable_cents: int = Field(description="the next payout run pays it")
    held_cents: int = Field(description="waiting for fraud review")
    paid_cents: int
    clawed_back_cents: int = Field(description="taken back after payment")
    next_tier: NextTier | None
    created_at: datetime

    @classmethod
    def of(cls, stats: ReferrerStats) -> "ReferrerOut":
        r, e, tier = stats.referrer, stats.earnings, stats.next_tier
        return cls(
            user_id=r.user_id,
            program_id=r.program_id,
            code=r.code,
            email=r.email,
            referral_count=r.referral_count,
            earned_cents=e.earned_cents,
            pending_cents=e.pending_cents,
            payable_cents=e.payable_cents,
            held_cents=e.held_cents,
            paid_cents=e.paid_cents,
            clawed_back_cents=e.clawed_back_cents,
            next_tier=NextTier(at_count=tier.threshold, reward_cents=tier.reward_cents)
            if tier
            else None,
            created_at=r.created_at,
        )

    def for_ingest(self, sent_email: str | None) -> ReferrerSummary:
        return ReferrerSummary(
            user_id=self.user_id,
            program_id=self.program_id,
            code=self.code,
            email=sent_back(self.email, sent_email),
            referral_count=self.referral_count,
            created_at=self.created_at,
        )


class ReferralOut(IngestAnswer):
    id: str
    program_id: str
    referee_id: str
    referrer_id: str
    code: str
    email: str | None = Field(
        description="the referee's; to an ingest key, only if its request sent it"
    )
    ordinal: int
    reward_cents: int
    status: ReferralStatus
    created_at: datetime
    payout_period: str | None
    payable_at: datetime
    click_id: str | None = Field(None, description="the tracked link's click it came from")

    @classmethod
    def of(cls, r: Referral) -> "ReferralOut":
        return cls(
            id=r.id,
            program_id=r.program_id,
            referee_id=r.referee_id,
            referrer_id=r.referrer_id,
            code=r.code,
            email=r.email,
            ordinal=r.ordinal,
            reward_cents=r.reward_cents,
            status=r.status,
            created_at=r.created_at,
            payout_period=r.payout_period,
            payable_at=r.payable_at,
            click_id=r.click_id,
        )

    def for_ingest(self, sent_email: str | None) -> "ReferralOut":
        return self.model_copy(update={"email": sent_back(self.email, sent_email)})


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Referral]) -> "ReferralPage":
        return cls(items=[ReferralOut.of(r) for r in page.items], next_cursor=page.next_cursor)


class ConversionOut(IngestAnswer):
    external_id: str
    user_id: str
    event: str
    value_cents: int | None
    created_at: datetime
    referral: ReferralOut | None = Field(description="the referral this conversion earned")

    def for_ingest(self, sent_email: str | None) -> "ConversionOut":
        referral = self.referral.for_ingest(sent_email) if self.referral else None
        return self.model_copy(update={"referral": referral})


class ReferrerCount(BaseModel):
    user_id: str
    referral_count: int


class SignupOut(IngestAnswer):
    referral: ReferralOut
    referrer: ReferrerCount
    referee_code: str | None

    def for_ingest(self, sent_email: str | None) -> "SignupOut":
        return self.model_copy(update={"referral": self.referral.for_ingest(sent_email)})
