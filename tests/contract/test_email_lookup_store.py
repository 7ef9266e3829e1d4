"""A referee's referral found by the email they signed up with, on every store: case does
not matter, the program does, and of two referees with one address the first referral."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from referrals.domain.model import Referral, Referrer, new_id
from referrals.ports import Store
from tests.contract.test_membership_store import PARTNERS, T0, add, member, referral


def with_email(r: Referral, email: str | None, at: datetime = T0) -> Referral:
    return replace(r, email=email, id=new_id(at))


def alice_in_both() -> tuple[Referrer, Referrer]:
    return member("alice", "ALICE"), member("alice", "ALICE-P", PARTNERS)


def test_a_referral_is_found_by_its_email_in_any_case(store: Store) -> None:
    bob = with_email(referral("alice", "bob", 1, "default"), "Bob.Smith@Example.COM")
    add(store, *alice_in_both(), bob)
    with store.read() as uow:
        assert uow.referrals.by_email("bob.smith@example.com") == bob
        assert uow.referrals.by_email("BOB.SMITH@EXAMPLE.COM") == bob
        assert uow.referrals.by_email("bob.smith@example.org") is None


def test_the_email_is_looked_up_in_one_program(store: Store) -> None:
    bob = with_email(referral("alice", "bob", 1, "default"), "bob@example.com")
    carol = with_email(referral("alice", "carol", 1, PARTNERS), "carol@example.com")
    add(store, *alice_in_both(), bob, carol)
    with store.read() as uow:
        assert uow.referrals.by_email("bob@example.com", program=PARTNERS) is None
        assert uow.referrals.by_email("carol@example.com", program=PARTNERS) == carol
        assert uow.referrals.by_email("carol@example.com") is None


def test_of_two_referees_with_one_address_the_first_referral_is_found(store: Store) -> None:
    now = datetime.now(UTC)
    first = with_email(referral("alice", "bob", 1, "default"), "shared@example.com", now)
    later = with_email(
        referral("alice", "bob2", 2, "default"), "SHARED@example.com", now + timedelta(seconds=1)
    )
    add(store, member("alice", "ALICE"), later, first)  # the later one written first
    with store.read() as uow:
        assert uow.referrals.by_email("shared@example.com") == first


def test_a_referral_without_an_email_is_never_found(store: Store) -> None:
    add(store, member("alice", "ALICE"), referral("alice", "bob", 1, "default"))
    with store.read() as uow:
        assert uow.referrals.by_email("") is None
        assert uow.referrals.by_email("bob") is None
