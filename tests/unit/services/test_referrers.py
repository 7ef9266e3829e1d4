import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import CodeTaken, InvalidInput, ReferrerExists
from referrals.services.referrers import enroll
from tests.clocks import FixedClock


def test_enroll_generates_a_code(store: MemoryStore, clock: FixedClock) -> None:
    enrollment = enroll(store, clock, "alice", "alice@example.com")
    assert enrollment.created
    assert len(enrollment.referrer.code) == 8
    assert enrollment.referrer.email == "alice@example.com"
    assert enrollment.referrer.created_at == clock.now()


def test_enroll_is_idempotent_for_the_same_user(store: MemoryStore, clock: FixedClock) -> None:
    first = enroll(store, clock, "alice")
    again = enroll(store, clock, "alice")
    assert not again.created
    assert again.referrer == first.referrer


def test_enroll_again_with_the_same_vanity_code_in_other_case_is_a_replay(
    store: MemoryStore, clock: FixedClock
) -> None:
    enroll(store, clock, "alice", code="Alice-1")
    assert not enroll(store, clock, "alice", code="ALICE-1").created


def test_enroll_again_with_another_code_is_refused(store: MemoryStore, clock: FixedClock) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    with pytest.raises(ReferrerExists):
        enroll(store, clock, "alice", code="ALICE-2")


def test_vanity_code_taken_case_insensitively(store: MemoryStore, clock: FixedClock) -> None:
    enroll(store, clock, "alice", code="SUMMER")
    with pytest.raises(CodeTaken):
        enroll(store, clock, "bob", code="summer")
    with store.read() as uow:
        assert uow.referrers.get("bob") is None


@pytest.mark.parametrize(("user_id", "code"), [("", None), ("a b", None), ("bob", "x!")])
def test_invalid_input_is_refused(
    store: MemoryStore, clock: FixedClock, user_id: str, code: str | None
) -> None:
    with pytest.raises(InvalidInput):
        enroll(store, clock, user_id, code=code)
