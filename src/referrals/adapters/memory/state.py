"""The in-memory store's state: every record, in dicts a unit of work copies whole, and
the helpers that treat referrals' rewards and other entries alike."""

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

from referrals.domain.clicks import Click
from referrals.domain.model import (
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Event,
    LineKind,
    PayoutRun,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    SignupSlot,
)
from referrals.domain.program import Program, RuleVersion
from referrals.domain.sales import Refund, Sale


@dataclass
class State:
    # Keyed by (program, user): a user is a referrer, and is referred, once per program.
    referrers: dict[tuple[str, str], Referrer] = field(default_factory=dict)
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code key -> referrer
    referrals: dict[str, Referral] = field(default_factory=dict)
    referees: dict[tuple[str, str], str] = field(default_factory=dict)  # -> referral id
    api_keys: dict[str, ApiKey] = field(default_factory=dict)  # hash -> key
    sessions: dict[tuple[str, str], DashboardSession] = field(default_factory=dict)
    runs: dict[str, PayoutRun] = field(default_factory=dict)
    outbox: dict[str, Event] = field(default_factory=dict)
    audit: dict[str, AuditEntry] = field(default_factory=dict)
    rewards: dict[str, Reward] = field(default_factory=dict)
    conversions: dict[str, Conversion] = field(default_factory=dict)
    signup_slots: dict[tuple[str, str], SignupSlot] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    programs: dict[str, Program] = field(default_factory=dict)
    rule_versions: dict[str, list[RuleVersion]] = field(default_factory=dict)  # by number
    sales: dict[str, Sale] = field(default_factory=dict)  # by external id
    refunds: dict[str, Refund] = field(default_factory=dict)  # by id
    refund_ids: dict[str, str] = field(default_factory=dict)  # refund external id -> id
    clicks: dict[str, Click] = field(default_factory=dict)  # by id
    sale_aliases: dict[str, str] = field(default_factory=dict)  # alias -> sale external id


Entry = Referral | Reward
E = TypeVar("E", Referral, Reward)


def transition(
    table: dict[str, E],
    key: str,
    allowed: Collection[ReferralStatus],
    to: ReferralStatus,
    note: str | None,
) -> E | None:
    current = table.get(key)
    if current is None or current.status not in allowed:
        return None
    table[key] = replace(current, status=to, note=note)
    return table[key]


def entries(state: State) -> Iterator[Entry]:
    """Everything a run pays: referrals' own rewards and the other entries."""
    yield from state.referrals.values()
    yield from state.rewards.values()


def user_of(entry: Entry) -> str:
    return entry.referrer_id if isinstance(entry, Referral) else entry.user_id


def cents_of(entry: Entry) -> int:
    return entry.reward_cents if isinstance(entry, Referral) else entry.cents


def kind_of(entry: Entry) -> LineKind:
    clawback = isinstance(entry, Reward) and entry.kind is RewardKind.CLAWBACK
    return LineKind.CLAWBACK if clawback else LineKind.REWARD


def put_entry(state: State, entry: Entry) -> None:
    if isinstance(entry, Referral):
        state.referrals[entry.id] = entry
    else:
        state.rewards[entry.id] = entry
