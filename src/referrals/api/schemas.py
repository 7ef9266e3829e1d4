"""Request and response bodies. Requests forbid unknown fields and refuse coercion (but
for a whole-number float where an integer goes: JSON Schema's `integer` is one)."""

import ipaddress
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from referrals.domain.model import (
    AuditEntry,
    Event,
    EventStatus,
    LineKind,
    PayoutRun,
    Referral,
    ReferralStatus,
    Reward,
    RewardKind,
    RunStatus,
)
from referrals.domain.periods import PERIOD_REGEX
from referrals.services.payouts import HELD_SHOWN, PayoutPreview
from referrals.services.queries import Page, ReferrerStats


def _check_email(value: str) -> str:
    # `test_environment`: addresses under .test (RFC 6761), which staging systems use, are
    # addresses like any other here: nothing is ever mailed to them.
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return value


UserId = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$"),
]
Code = Annotated[
    str, StringConstraints(strict=True, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
]
Email = Annotated[
    str,
    StringConstraints(strict=True, min_length=3, max_length=254),
    AfterValidator(_check_email),
    # `idn-email`, not `email`: internationalised addresses (josé@example.com) are taken.
    Field(
        json_schema_extra={"format": "idn-email"},
        description="Checked by email-validator: no quoted local part, IP literal or special-"
        "use domain (.local, .localhost, .invalid, .onion, .arpa; .test is accepted)",
    ),
]


def _normalise_ip(value: str) -> str:
    """One spelling per address, so the same address always hashes the same."""
    if "%" in value:  # a scoped address (fe80::1%eth0) names an interface, not a client
        raise ValueError("an IP address cannot carry a zone index")
    return str(ipaddress.ip_address(value))  # ValueError: a 400 like any bad field


IpAddress = Annotated[
    str,
    StringConstraints(strict=True, min_length=2, max_length=45),
    AfterValidator(_normalise_ip),
    # JSON Schema has no `ip` format: say IPv4 or IPv6, as `ipaddress` reads them.
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}],
            "maxLength": 45,
        }
    ),
]


def _whole_number(value: object) -> object:
    """A float that is a whole number, as the int it is: JSON Schema's `integer` takes
    60.0 (JSON does not tell it from 60). Strings and booleans stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# After `Field(strict=True, ...)` in an int's Annotated: 60.0 is taken as 60, 60.5 is not.
WholeNumber = BeforeValidator(_whole_number)
DeviceId = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")
]
# Any text but control characters (PostgreSQL refuses NUL in text; logs and CSVs break),
# and more than whitespace, which the use cases strip: `str.strip()`'s, spelled out, for
# `\s` differs between regex engines (ECMA's takes U+FEFF, Python's does not).
_SPACE = r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
VISIBLE_TEXT = rf"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{_SPACE}][^\x00-\x1f\x7f]*$"
Reason = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=500, pattern=VISIBLE_TEXT)
]
# The original API answered dollars as a JSON number: 10 or 12.5, computed exactly.
Dollars = Annotated[
    Decimal,
    PlainSerializer(lambda d: int(d) if d == d.to_integral() else float(d)),
    WithJsonSchema({"type": "number", "examples": [10, 12.5]}),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LegacySignupRequest(Request):
    userId: UserId
    referralCode: Code
    email: Email | None = None


class LegacySignupResponse(BaseModel):
    message: str = "Signup successful"
    rewardAmount: Dollars
    referralCount: int
    referralId: str
    rewardCents: int
    refereeCode: str | None


class Fingerprints(Request):
    """Where the user signed up from; kept only as hashes, to flag a referee who shares
    the referrer's IP address or device."""

    ip: IpAddress | None = None
    device_id: DeviceId | None = Field(None, description="A stable device identifier")


class EnrollRequest(Fingerprints):
    user_id: UserId
    email: Email | None = None
    code: Code | None = None


class SignupRequest(Fingerprints):
    user_id: UserId
    referral_code: Code
    email: Email | None = None
    signed_up_at: AwareDatetime | None = Field(
        None,
        description="Import a historical signup (admin keys only): from 1970-01-01T00:00:00Z,"
        " not in the future (400 otherwise).",
    )


class ConversionRequest(Request):
    user_id: UserId
    event: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
    ]
    value_cents: Annotated[int, Field(strict=True, ge=0, le=10**12), WholeNumber] | None = None
    external_id: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ] = Field(description="Your id for this event: sending it again is a safe replay")


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
    code: str
    email: str | None = Field(description="the email the request sent, if it is the one kept")
    referral_count: int
    created_at: datetime


class ReferrerOut(IngestAnswer):
    """A referrer with their earnings, as an admin key reads it."""

    user_id: str
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
            code=self.code,
            email=sent_back(self.email, sent_email),
            referral_count=self.referral_count,
            created_at=self.created_at,
        )


class ReferralOut(IngestAnswer):
    id: str
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

    @classmethod
    def of(cls, r: Referral) -> "ReferralOut":
        return cls(
            id=r.id,
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
        )

    def for_ingest(self, sent_email: str | None) -> "ReferralOut":
        return self.model_copy(update={"email": sent_back(self.email, sent_email)})


class CheckOut(BaseModel):
    name: str
    passed: bool
    detail: str


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
            )
        return cls(
            **ReferralOut.of(r).model_dump(),
            receipt=receipt,
            note=r.note,
            entries=[EntryOut.model_validate(e) for e in entries],
        )


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


class ReviewPage(BaseModel):
    """Held rewards, oldest first, each with the receipt that says why it is held."""

    items: list[ReferralDetail]
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Referral]) -> "ReviewPage":
        return cls(items=[ReferralDetail.of(r) for r in page.items], next_cursor=page.next_cursor)


class Decision(Request):
    reason: Reason | None = None


class ReasonRequired(Request):
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


class ReferrerCount(BaseModel):
    user_id: str
    referral_count: int


class SignupOut(IngestAnswer):
    referral: ReferralOut
    referrer: ReferrerCount
    referee_code: str | None

    def for_ingest(self, sent_email: str | None) -> "SignupOut":
        return self.model_copy(update={"referral": self.referral.for_ingest(sent_email)})


class Health(BaseModel):
    status: str


Period = Annotated[str, StringConstraints(strict=True, pattern=f"^{PERIOD_REGEX}$")]


class PayoutRequest(Request):
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


class PayoutLineOut(BaseModel):
    referrer_id: str
    referral_count: int
    amount_cents: int
    kind: LineKind


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


class Problem(BaseModel):
    """An RFC 9457 problem document; `code` is stable, the rest is for people."""

    type: str
    title: str
    status: int
    detail: str
    code: str
