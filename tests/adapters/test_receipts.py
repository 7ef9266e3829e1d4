"""Receipts read back from their stored JSON: the same value as parsed afresh, and one
instance for every row that stored the same text."""

import json

from referrals.adapters.receipts import parse_receipt
from referrals.domain.model import Check, Receipt

RECEIPT = Receipt(
    rule="signup",
    tier_threshold=5,
    tier_cents=1500,
    hold_days=7,
    checks=(Check("disposable_email", False, "mailinator.com is a disposable domain", True),),
    cap="monthly",
    program="partners",
    rule_version=3,
)


def test_a_stored_receipt_reads_back_as_it_was_written() -> None:
    text = json.dumps(RECEIPT.to_dict(), separators=(",", ":"))
    assert parse_receipt(text) == RECEIPT == Receipt.from_dict(json.loads(text))


def test_the_same_text_is_one_instance_and_other_text_another() -> None:
    text = json.dumps(RECEIPT.to_dict(), separators=(",", ":"))
    other = json.dumps({**RECEIPT.to_dict(), "tier_cents": 2000}, separators=(",", ":"))
    copy = "".join(list(text))  # an equal text, another string: as a second row reads it
    assert copy is not text and parse_receipt(copy) is parse_receipt(text)
    assert parse_receipt(other).tier_cents == 2000
    assert parse_receipt(other) != parse_receipt(text)
