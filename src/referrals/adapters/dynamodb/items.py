"""Items of the main and outbox tables: their keys, and domain objects to items and back.

Values here are plain Python (the codec in `expressions` types them): a time is
integer microseconds since the epoch, money integer cents, and an attribute that
is None is left out of the item. Reading back, numbers arrive as Decimal and are
made int. The table layout these keys follow is described in `tables`.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from referrals.adapters.dynamodb.expressions import Values
from referrals.adapters.receipts import parse_receipt
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.codes import normalize_code
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Event,
    EventStatus,
    LineKind,
    PayoutRun,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    Role,
    RunStatus,
)
from referrals.domain.program import (
    DEFAULT_ATTRIBUTION_DAYS,
    Attribution,
    Program,
    ProgramStatus,
    RuleVersion,
)

ONE_MICROSECOND = timedelta(microseconds=1)
# The head of the report chain: the run completed last, and a version that every
# completion moves on in its commit (see `DynamoPayouts.lock_chain`).
CHAIN_HEAD: Values = {"pk": "CHAIN", "sk": "HEAD"}
RULES_PREFIX = "RULES#"  # the sort keys of a program's rule versions


def micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def _time(item: Values, name: str) -> datetime | None:
    return from_micros(int(item[name])) if name in item else None


def _int(item: Values, name: str) -> int:
    """A number attribute; absent (an item written before it existed) reads as zero."""
    return int(item.get(name, 0))


# Keys ------------------------------------------------------------------------------


def in_program(key: str, program_id: str) -> str:
    """`key` for a record of `program_id`. The default program's keys are those from
    before programs existed, so a table made then needs no rewrite; `#` is in neither
    user ids nor program ids, so the keys of two programs never meet."""
    return key if program_id == DEFAULT_PROGRAM else f"{key}#{program_id}"


def referrer_pk(user_id: str, program_id: str) -> str:
    return in_program(f"REFERRER#{user_id}", program_id)


def referrer_key(user_id: str, program_id: str) -> Values:
    # A user's profiles in every program are one item collection.
    return {"pk": f"REFERRER#{user_id}", "sk": in_program("PROFILE", program_id)}


def code_key(code: str) -> Values:
    return {"pk": f"CODE#{normalize_code(code)}", "sk": "CODE"}


def referral_key(referee_id: str, program_id: str) -> Values:
    # The referral item is also the referee's claim: one referral per referee and program.
    return {"pk": f"REFEREE#{referee_id}", "sk": in_program("REFERRAL", program_id)}


def email_key(email: str, program_id: str) -> str:
    """The `by_referee_email` index's key of a referee's email: emails match case-insensitively."""
    return f"{program_id}#{email.lower()}"


def signup_slot_key(user_id: str, program_id: str) -> Values:
    return {"pk": f"SLOT#{user_id}", "sk": in_program("SLOT", program_id)}


def referral_claim_key(referral_id: str) -> Values:
    # Makes a referral id unique and finds its item by id with consistent reads (two
    # GetItems): the `by_id` index is eventually consistent, so a conversion or a
    # review right after the signup could miss the referral through it.
    return {"pk": f"REFID#{referral_id}", "sk": "REFID"}


def entry_pk(referral_id: str) -> str:
    # Entries live under their referral's id, not in the referral's own item
    # collection (`REFEREE#<referee>`): an entry knows only the referral's id, and
    # keyed by it `for_referral` is one strongly consistent Query, even for a
    # referral added in the same unit of work.
    return f"REFERRAL#{referral_id}"


def entry_key(referral_id: str, reward_id: str) -> Values:
    return {"pk": entry_pk(referral_id), "sk": f"REWARD#{reward_id}"}


def reward_claim_key(reward_id: str) -> Values:
    # Makes an entry id unique across referrals and finds its item by id with
    # consistent reads (two GetItems), where an index would be eventually consistent.
    return {"pk": f"REWARD#{reward_id}", "sk": "REWARD"}


def run_key(period: str) -> Values:
    return {"pk": "RUNS", "sk": period}


def item_key(item: Values) -> Values:
    """The main-table key of an item read from an index."""
    return {"pk": item["pk"], "sk": item["sk"]}


# Referrers, referrals and entries --------------------------------------------------


def referrer_item(r: Referrer) -> Values:
    return {
        **referrer_key(r.user_id, r.program_id),
        "program_id": r.program_id,
        "user_id": r.user_id,
        "code": r.code,
        "referral_count": r.referral_count,
        "created_at": to_micros(r.created_at),
        "email": r.email,
        "ip_hash": r.ip_hash,
        "device_hash": r.device_hash,
    }


def referrer(item: Values) -> Referrer:
    return Referrer(
        user_id=item["user_id"],
        code=item["code"],
        email=item.get("email"),
        referral_count=int(item["referral_count"]),
        created_at=from_micros(int(item["created_at"])),
        ip_hash=item.get("ip_hash"),
        device_hash=item.get("device_hash"),
        cap_lifetime_cents=_int(item, "cap_lifetime_cents"),
        cap_month=item.get("cap_month"),
        cap_month_cents=_int(item, "cap_month_cents"),
        program_id=program_of(item),
    )


def referral_item(r: Referral) -> Values:
    return {
        **referral_key(r.referee_id, r.program_id),
        "kind": "REFERRAL",
        "id": r.id,
        "program_id": r.program_id,
        "referee_id": r.referee_id,
        "referrer_id": r.referrer_id,
        "referrer_pk": referrer_pk(r.referrer_id, r.program_id),
        "code": r.code,
        "ordinal": r.ordinal,
        "reward_cents": r.reward_cents,
        "status_pk": r.status.value,
        "created_at": to_micros(r.created_at),
        "email": r.email,
        "receipt": receipt_json(r.receipt) if r.receipt is not None else None,
        "click_id": r.click_id,
        "email_key": email_key(r.email, r.program_id) if r.email else None,  # by_referee_email
        **_payout_attributes(r.referrer_id, r),
    }


def referral(item: Values, status: ReferralStatus | None = None) -> Referral:
    """The referral of an item; `status`: its state as read from its run (run_states),
    if not the one stored."""
    return Referral(
        id=item["id"],
        referee_id=item["referee_id"],
        referrer_id=item["referrer_id"],
        code=item["code"],
        email=item.get("email"),
        ordinal=int(item["ordinal"]),
        reward_cents=int(item["reward_cents"]),
        status=status if status is not None else ReferralStatus(item["status_pk"]),
        created_at=from_micros(int(item["created_at"])),
        payout_period=item.get("payout_period"),
        hold=hold(item),
        receipt=parse_receipt(item["receipt"]) if "receipt" in item else None,
        note=item.get("note"),
        program_id=program_of(item),
        click_id=item.get("click_id"),
    )


def entry_item(e: Reward) -> Values:
    return {
        **entry_key(e.referral_id, e.id),
        "id": e.id,
        "program_id": e.program_id,
        "referral_id": e.referral_id,
        "user_id": e.user_id,
        # The beneficiary's partition of `by_referrer_id_keys`, for their earnings.
        "referrer_pk": referrer_pk(e.user_id, e.program_id),
        # Not `kind`: that attribute is the partition key of the `by_id` index of referrals.
        "entry_kind": e.kind.value,
        "reward_cents": e.cents,
        "status_pk": e.status.value,
        "created_at": to_micros(e.created_at),
        "sale_id": e.sale_id,
        **_payout_attributes(e.user_id, e),
    }


def reward(item: Values, status: ReferralStatus | None = None) -> Reward:
    """The entry of an item; `status` as for `referral`."""
    return Reward(
        id=item["id"],
        referral_id=item["referral_id"],
        user_id=item["user_id"],
        kind=RewardKind(item["entry_kind"]),
        cents=int(item["reward_cents"]),
        status=status if status is not None else ReferralStatus(item["status_pk"]),
        created_at=from_micros(int(item["created_at"])),
        hold=hold(item),
        payout_period=item.get("payout_period"),
        note=item.get("note"),
        program_id=program_of(item),
        sale_id=item.get("sale_id"),
    )


def program_of(item: Values) -> str:
    """An item's program; one written before programs existed is the default's."""
    program: str = item.get("program_id", DEFAULT_PROGRAM)
    return program


def _payout_attributes(payee: str, entry: Referral | Reward) -> Values:
    """What the payout steps read and write, alike on referral items and entries."""
    period = entry.payout_period
    return {
        # Absent means no hold, as on items written before holds existed.
        "hold_micros": entry.hold // ONE_MICROSECOND if entry.hold else None,
        "note": entry.note,
        "payout_period": period,
        "period_pk": period,
        "period_sk": f"{payee}#{entry.id}" if period is not None else None,
    }


def receipt_json(receipt: Receipt) -> str:
    return json.dumps(receipt.to_dict(), sort_keys=True, separators=(",", ":"))


def hold(item: Values) -> timedelta:
    return ONE_MICROSECOND * _int(item, "hold_micros")


def payee(item: Values) -> str:
    """Who an item pays: an entry's user, a referral's referrer."""
    paid: str = item["user_id"] if "user_id" in item else item["referrer_id"]
    return paid


def line_kind(item: Values) -> LineKind:
    clawback = item.get("entry_kind") == RewardKind.CLAWBACK.value
    return LineKind.CLAWBACK if clawback else LineKind.REWARD


def payable_micros(item: Values) -> int:
    return int(item["created_at"]) + _int(item, "hold_micros")


def conversion_key(external_id: str) -> Values:
    return {"pk": f"CONVERSION#{external_id}", "sk": "CONVERSION"}


def conversion_item(c: Conversion) -> Values:
    return {
        **conversion_key(c.external_id),
        "external_id": c.external_id,
        "user_id": c.user_id,
        "event": c.event,
        "created_at": to_micros(c.created_at),
        "value_cents": c.value_cents,
        "referral_id": c.referral_id,
        "awaits_signup": True if c.awaits_signup else None,
        "program_id": c.program_id,
    }


def conversion(item: Values) -> Conversion:
    value = item.get("value_cents")
    return Conversion(
        external_id=item["external_id"],
        user_id=item["user_id"],
        event=item["event"],
        value_cents=int(value) if value is not None else None,
        created_at=from_micros(int(item["created_at"])),
        referral_id=item.get("referral_id"),
        awaits_signup="awaits_signup" in item,
        program_id=program_of(item),
    )


# Programs and rule versions -------------------------------------------------------


def program_pk(program_id: str) -> str:
    # A program and its rule versions share a partition: each program's reads (by the
    # service's rules book, on every server) fall on a partition of its own.
    return f"PROGRAM#{program_id}"


def program_key(program_id: str) -> Values:
    return {"pk": program_pk(program_id), "sk": "PROGRAM"}


def program_listing_key(program_id: str) -> Values:
    # Programs are few (made by hand): their listing shares one partition, sorted by id,
    # so a list is a Query, never a Scan.
    return {"pk": "PROGRAMS", "sk": program_id}


def rule_version_key(program_id: str, version: int) -> Values:
    # Zero-padded so that string order is version order, up to version 999999 (a
    # million rule changes of one program).
    return {"pk": program_pk(program_id), "sk": f"{RULES_PREFIX}{version:06d}"}


def program_item(p: Program) -> Values:
    return {
        **program_key(p.id),
        "program_id": p.id,
        "program_name": p.name,  # `name` is a reserved word in expressions
        "currency": p.currency,
        "status": p.status.value,
        "share_url_template": p.share_url_template,
        "created_at": to_micros(p.created_at),
        "landing_url": p.landing_url,
        "attribution_window_days": p.attribution_window_days,
        "attribution": p.attribution.value,
    }


def program(item: Values) -> Program:
    return Program(
        id=item["program_id"],
        name=item["program_name"],
        currency=item["currency"],
        status=ProgramStatus(item["status"]),
        share_url_template=item.get("share_url_template"),
        created_at=from_micros(int(item["created_at"])),
        # A program written before tracked links has none, and the default settings.
        landing_url=item.get("landing_url"),
        attribution_window_days=int(item.get("attribution_window_days", DEFAULT_ATTRIBUTION_DAYS)),
        attribution=Attribution(item.get("attribution", Attribution.FIRST.value)),
    )


def rule_version_item(v: RuleVersion) -> Values:
    return {
        **rule_version_key(v.program_id, v.version),
        "program_id": v.program_id,
        "version": v.version,
        "effective_from": to_micros(v.effective_from),
        "created_at": to_micros(v.created_at),
        # One string, as the SQL stores keep it: a version never changes, and no
        # expression reads inside its rules.
        "rules": json.dumps(v.to_dict(), sort_keys=True, separators=(",", ":")),
    }


def rule_version(item: Values) -> RuleVersion:
    return RuleVersion.from_dict(
        json.loads(item["rules"]),
        program_id=item["program_id"],
        version=int(item["version"]),
        effective_from=from_micros(int(item["effective_from"])),
        created_at=from_micros(int(item["created_at"])),
    )


# Keys, audit, payout runs, events --------------------------------------------------


def api_key_key(key_hash: str) -> Values:
    # Keys are few (made by hand): one partition, where the admin's lists read them all.
    return {"pk": "KEYS", "sk": key_hash}


def api_key_item(key: ApiKey) -> Values:
    return {
        **api_key_key(key.key_hash),
        "id": key.id,
        "role": key.role.value,
        "created_at": to_micros(key.created_at),
        "key_name": key.name,  # `name` is a reserved word in expressions
        "expires_at": micros(key.expires_at),
        "revoked_at": micros(key.revoked_at),
        "last_used_at": micros(key.last_used_at),
    }


def api_key(item: Values) -> ApiKey:
    return ApiKey(
        item["id"],
        Role(item["role"]),
        item["sk"],
        from_micros(int(item["created_at"])),
        name=item.get("key_name"),
        expires_at=_time(item, "expires_at"),
        revoked_at=_time(item, "revoked_at"),
        last_used_at=_time(item, "last_used_at"),
    )


def session_key(key_id: str, session_id: str) -> Values:
    return {"pk": f"KEYID#{key_id}", "sk": f"SESSION#{session_id}"}


def session_item(session: DashboardSession) -> Values:
    return {
        **session_key(session.key_id, session.id),
        "created_at": to_micros(session.created_at),
        "expires_at": to_micros(session.expires_at),
        "ended_at": micros(session.ended_at),
    }


def session(item: Values) -> DashboardSession:
    return DashboardSession(
        id=item["sk"].removeprefix("SESSION#"),
        key_id=item["pk"].removeprefix("KEYID#"),
        created_at=from_micros(int(item["created_at"])),
        expires_at=from_micros(int(item["expires_at"])),
        ended_at=_time(item, "ended_at"),
    )


def audit_item(entry: AuditEntry) -> Values:
    return {
        "pk": "AUDIT",
        "sk": entry.id,
        "at": to_micros(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "reason": entry.reason,
    }


def audit(item: Values) -> AuditEntry:
    return AuditEntry(
        id=item["sk"],
        at=from_micros(int(item["at"])),
        actor=item["actor"],
        action=item["action"],
        target=item["target"],
        reason=item.get("reason"),
    )


def run(item: Values) -> PayoutRun:
    return PayoutRun(
        period=item["sk"],
        status=RunStatus(item["status"]),
        cutoff=from_micros(int(item["cutoff"])),
        started_at=from_micros(int(item["started_at"])),
        lease_owner=item.get("lease_owner"),
        lease_expires_at=_time(item, "lease_expires_at"),
        referrer_count=_int(item, "referrer_count"),
        referral_count=_int(item, "referral_count"),
        total_cents=_int(item, "total_cents"),
        report_key=item.get("report_key"),
        report_sha256=item.get("report_sha256"),
        previous_month_period=item.get("previous_month_period"),
        previous_month_sha256=item.get("previous_month_sha256"),
        previous_period=item.get("previous_period"),
        previous_sha256=item.get("previous_sha256"),
        completed_at=_time(item, "completed_at"),
        error=item.get("error"),
        clawback_cents=_int(item, "clawback_cents"),
        carried_forward_cents=_int(item, "carried_forward_cents"),
    )


def event_item(event: Event, payload: str) -> Values:
    due = event.next_attempt_at is not None and event.status is EventStatus.PENDING
    return {
        "id": event.id,
        "type": event.type,
        "payload": payload,
        "created_at": to_micros(event.created_at),
        # A pending event with a time is listed by the sparse `due` index alone: with no
        # `status` it is out of `by_status`, which costs its write there (and on delivery,
        # an entry there instead of a move). `event` reads it as pending.
        "status": None if due else event.status.value,
        "attempts": event.attempts,
        "next_attempt_at": micros(event.next_attempt_at),
        # Only a pending event with a time is in the sparse `due` index.
        "due_pk": "PENDING" if due else None,
        "due_at": micros(event.next_attempt_at) if due else None,
        "last_error": event.last_error,
    }


def event(item: Values) -> Event:
    payload: Any = json.loads(item["payload"])
    return Event(
        id=item["id"],
        type=item["type"],
        payload=payload,
        created_at=from_micros(int(item["created_at"])),
        status=EventStatus(item.get("status", EventStatus.PENDING.value)),
        attempts=int(item["attempts"]),
        next_attempt_at=_time(item, "next_attempt_at"),
        last_error=item.get("last_error"),
    )
