"""Rows to domain values, one explicit function per record, and back where a column
holds more than a plain value (a receipt, a rule version's rules, as compact JSON).

Times arrive as `datetime`s already (`MicrosTime`); holds are stored as the instant
the reward is payable at, which is what a payout run filters on.
"""

import json
from typing import Any

from referrals.adapters.receipts import parse_receipt
from referrals.domain.model import (
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Event,
    EventStatus,
    PayoutRun,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    Role,
    RunStatus,
    SignupParties,
)
from referrals.domain.program import Attribution, Program, ProgramStatus, RuleVersion

# A row: SQLAlchemy's Row, or anything with the columns as attributes (`Prefixed`).
Row = Any


def referrer(row: Row) -> Referrer:
    return Referrer(
        user_id=row.user_id,
        code=row.code,
        email=row.email,
        referral_count=row.referral_count,
        created_at=row.created_at,
        ip_hash=row.ip_hash,
        device_hash=row.device_hash,
        cap_lifetime_cents=row.cap_lifetime_cents,
        cap_month=row.cap_month,
        cap_month_cents=row.cap_month_cents,
        program_id=row.program_id,
    )


def referral(row: Row) -> Referral:
    return Referral(
        id=row.id,
        referee_id=row.referee_id,
        referrer_id=row.referrer_id,
        code=row.code,
        email=row.email,
        ordinal=row.ordinal,
        reward_cents=row.reward_cents,
        status=ReferralStatus(row.status),
        created_at=row.created_at,
        payout_period=row.payout_period,
        hold=row.payable_at - row.created_at,
        receipt=parse_receipt(row.receipt) if row.receipt else None,
        note=row.note,
        program_id=row.program_id,
        click_id=row.click_id,
    )


def receipt_json(receipt: Receipt | None) -> str | None:
    if receipt is None:
        return None
    return json.dumps(receipt.to_dict(), separators=(",", ":"))


class Prefixed:
    """One table's columns of a joined row, under their own names."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Row, prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def parties(row: Row) -> SignupParties:
    """A signup's joined read: the code's referrer (`r_`), the referee's earlier
    referral (`p_`) and the referee's profile (`e_`), each or NULLs."""
    holder, earlier, referee = (Prefixed(row, prefix) for prefix in ("r_", "p_", "e_"))
    return SignupParties(
        referrer(holder) if row.r_user_id is not None else None,
        referral(earlier) if row.p_id is not None else None,
        referrer(referee) if row.e_user_id is not None else None,
    )


def reward(row: Row) -> Reward:
    return Reward(
        id=row.id,
        referral_id=row.referral_id,
        user_id=row.user_id,
        kind=RewardKind(row.kind),
        cents=row.cents,
        status=ReferralStatus(row.status),
        created_at=row.created_at,
        hold=row.payable_at - row.created_at,
        payout_period=row.payout_period,
        note=row.note,
        program_id=row.program_id,
        sale_id=row.sale_id,
    )


def conversion(row: Row) -> Conversion:
    return Conversion(
        external_id=row.external_id,
        user_id=row.user_id,
        event=row.event,
        value_cents=row.value_cents,
        created_at=row.created_at,
        referral_id=row.referral_id,
        awaits_signup=bool(row.awaits_signup),
        program_id=row.program_id,
    )


def api_key(row: Row) -> ApiKey:
    return ApiKey(
        row.id,
        Role(row.role),
        row.key_hash,
        row.created_at,
        name=row.name,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def session(row: Row) -> DashboardSession:
    return DashboardSession(row.id, row.key_id, row.created_at, row.expires_at, row.ended_at)


def payout_run(row: Row) -> PayoutRun:
    return PayoutRun(
        period=row.period,
        status=RunStatus(row.status),
        cutoff=row.cutoff,
        started_at=row.started_at,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        referrer_count=row.referrer_count,
        referral_count=row.referral_count,
        total_cents=row.total_cents,
        report_key=row.report_key,
        report_sha256=row.report_sha256,
        previous_month_period=row.previous_month_period,
        previous_month_sha256=row.previous_month_sha256,
        previous_period=row.previous_period,
        previous_sha256=row.previous_sha256,
        completed_at=row.completed_at,
        error=row.error,
        clawback_cents=row.clawback_cents,
        carried_forward_cents=row.carried_forward_cents,
    )


def event(row: Row) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        payload=json.loads(row.payload),
        created_at=row.created_at,
        status=EventStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


def audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        reason=row.reason,
    )


def program(row: Row) -> Program:
    return Program(
        id=row.id,
        name=row.name,
        currency=row.currency,
        status=ProgramStatus(row.status),
        share_url_template=row.share_url_template,
        created_at=row.created_at,
        landing_url=row.landing_url,
        attribution_window_days=row.attribution_window_days,
        attribution=Attribution(row.attribution),
    )


def rule_version(row: Row) -> RuleVersion:
    return RuleVersion.from_dict(
        json.loads(row.rules),
        program_id=row.program_id,
        version=row.version,
        effective_from=row.effective_from,
        created_at=row.created_at,
    )


def rules_json(version: RuleVersion) -> str:
    """The rules without the version's identity, which has columns of its own."""
    return json.dumps(version.to_dict(), sort_keys=True, separators=(",", ":"))
