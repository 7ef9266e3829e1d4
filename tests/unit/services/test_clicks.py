"""Following a tracked link: the owners of codes kept once found (a code's owner never
changes), unknown codes never kept, and a click handed to a writer instead of written."""

from referrals.adapters.memory import MemoryStore
from referrals.domain.clicks import Click
from referrals.domain.program import RuleVersion
from referrals.services.clicks import LinkOwner, LinkOwners, Visit, follow_link
from referrals.services.programs import RulesBook, update_program
from referrals.services.referrers import enroll
from tests.clocks import FixedClock

KEY = b"unit-test-fingerprint-key-0123456789"
VISIT = Visit("203.0.113.7", "Mozilla/5.0", "https://news.example.org/a", {})


def landing(store: MemoryStore, clock: FixedClock) -> RulesBook:
    """The rules book of a store whose default program lands on shop.example."""
    book = RulesBook(store, clock, RuleVersion())
    book.ensure_default()
    update_program(store, clock, "admin", "default", landing_url="https://shop.example/")
    return book


def test_a_found_owner_is_kept_under_its_code_in_any_case(
    store: MemoryStore, clock: FixedClock
) -> None:
    enroll(store, clock, "alice", code="Alice")
    owners = LinkOwners(store)
    found = owners.of("alice")
    assert found == LinkOwner("default", "Alice", "alice")
    assert owners.of("ALICE") is found  # kept: not read again


def test_an_unknown_code_is_not_kept_so_a_code_enrolled_later_is_found(
    store: MemoryStore, clock: FixedClock
) -> None:
    owners = LinkOwners(store)
    assert owners.of("BOB") is None
    assert owners.of("not a code!") is None
    enroll(store, clock, "bob", code="BOB")
    assert owners.of("bob") == LinkOwner("default", "BOB", "bob")


def test_past_its_size_the_first_kept_goes_first(store: MemoryStore, clock: FixedClock) -> None:
    for user in ("ann", "ben", "cid"):
        enroll(store, clock, user, code=user.upper())
    owners = LinkOwners(store, size=2)
    first, second = owners.of("ANN"), owners.of("BEN")
    owners.of("CID")
    assert owners.of("BEN") is second
    again = owners.of("ANN")
    assert again == first and again is not first  # read again, then kept again


def test_a_click_handed_to_a_writer_is_not_written_here(
    store: MemoryStore, clock: FixedClock
) -> None:
    enroll(store, clock, "alice", code="ALICE")
    book = landing(store, clock)
    handed: list[Click] = []

    def record(click: Click) -> bool:
        handed.append(click)
        return True

    target = follow_link(store, clock, book, KEY, "alice", VISIT, record=record)
    assert target.click is not None and handed == [target.click]
    assert target.url == f"https://shop.example/?ref=ALICE&click_id={target.click.id}"
    with store.read() as uow:
        assert uow.clicks.get(target.click.id) is None


def test_a_click_the_writer_drops_leaves_no_click_id(store: MemoryStore, clock: FixedClock) -> None:
    enroll(store, clock, "alice", code="ALICE")
    book = landing(store, clock)
    target = follow_link(store, clock, book, KEY, "ALICE", VISIT, record=lambda _: False)
    assert target.click is None and target.url == "https://shop.example/?ref=ALICE"
