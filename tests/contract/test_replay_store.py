"""The replay's read (ports.replay) on every store: a program's referrals as a simulation
replays them, in id order, in parts, up to an id, beside another program's referrals."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.model import Check, Receipt, Referral, ReferralStatus, new_id
from referrals.domain.program import Program, RuleVersion
from referrals.domain.replay_rows import micros, replay_row
from referrals.ports import Store
from tests.contract.test_store import add_referrer, referral, referrer

T0 = datetime(2026, 1, 5, 12, 30, 1, 123456, tzinfo=UTC)
LAST_ID = "7" + "Z" * 25
PARTNERS = Program("partners", "Partners", created_at=T0)
HELD = Receipt(
    "signup", 1, 1000, 7, (Check("disposable_email", False, "mailinator.com", shadow=True),)
)


def recorded(store: Store) -> list[Referral]:
    """Five referrals of the default program (ids a minute apart) and one of another,
    written out of id order; the default program's, in id order."""
    with store.unit_of_work() as uow:
        uow.programs.add(PARTNERS, RuleVersion(program_id="partners", created_at=T0))
        uow.commit()
    add_referrer(store, referrer("alice", "A1"))
    add_referrer(store, replace(referrer("alice", "A2"), program_id="partners"))
    at = [T0 + timedelta(minutes=n) for n in range(6)]
    ours = [
        referral("alice", "u0", 1, id=new_id(at[0]), created_at=at[0]),  # no receipt
        referral(
            "alice",
            "u1",
            2,
            id=new_id(at[1]),
            created_at=at[1],
            status=ReferralStatus.HELD,
            hold=timedelta(days=7),
            receipt=HELD,
        ),
        referral("alice", "u2", 3, id=new_id(at[2]), created_at=at[2], reward_cents=0),
        referral("alice", "u3", 4, id=new_id(at[3]), status=ReferralStatus.REJECTED),
        referral("alice", "u4", 5, id=new_id(at[4]), receipt=Receipt("signup", 1, 1000)),
    ]
    theirs = referral("alice", "p1", 1, id=new_id(at[5]), program_id="partners", code="A2")
    with store.unit_of_work() as uow:
        for r in (ours[3], theirs, *ours[:3], ours[4]):
            uow.referrals.add(r)
        uow.commit()
    return ours


def test_the_replay_reads_one_programs_referrals_in_id_order_in_parts(store: Store) -> None:
    ours = recorded(store)
    parts = list(store.replay.rows("default", LAST_ID, 2))
    assert all(len(part) <= 2 for part in parts)
    assert [row for part in parts for row in part] == [replay_row(r) for r in ours]


def test_a_replay_row_holds_what_the_replay_reads_of_a_referral(store: Store) -> None:
    held = recorded(store)[1]
    (row,) = [row for part in store.replay.rows("default", LAST_ID, 10) for row in part][1:2]
    created = micros(T0 + timedelta(minutes=1))
    assert row == (held.id, "alice", 2, 1000, "held", created, created + 7 * 86_400_000_000, HELD)


def test_the_replay_reads_only_the_ids_before_the_one_given(store: Store) -> None:
    ours = recorded(store)
    before = [row[0] for part in store.replay.rows("default", ours[2].id, 10) for row in part]
    assert before == [ours[0].id, ours[1].id]
    assert list(store.replay.rows("partners", ours[0].id, 10)) in ([], [[]])


def test_a_replay_read_is_one_snapshot(store: Store, request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["store"] == "dynamodb":
        pytest.skip("DynamoDB has no read longer than a request: a page per query")
    ours = recorded(store)
    parts = store.replay.rows("default", LAST_ID, 2)
    first = next(parts)
    # Written while the read is under way: a referral between two read, a status moved.
    late = referral("alice", "late", 6, id=new_id(T0 + timedelta(minutes=3, seconds=30)))
    with store.unit_of_work() as uow:
        uow.referrals.add(late)
        uow.referrals.transition(ours[4].id, {ReferralStatus.PENDING}, ReferralStatus.PAID, None)
        uow.commit()
    rest = [row for part in parts for row in part]
    assert [*first, *rest] == [replay_row(r) for r in ours]
    after = [row for part in store.replay.rows("default", LAST_ID, 2) for row in part]
    assert [(row[0], row[4]) for row in after[4:]] == [
        (late.id, "pending"),
        (ours[4].id, "paid"),
    ]
