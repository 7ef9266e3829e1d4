"""Receipts as stored: compact JSON, read back into the immutable domain value.

Parsing is cached by the stored text. A program's receipts repeat (the same rule,
tier, hold and check verdicts for most of its rewards), and a Receipt is a frozen
value, so one parsed instance serves every row that stored the same text: reading a
page of referrals (a list, a payout's dry run, a simulation's replay) parsed each
receipt again, about a third of the time a row took to become a Referral.
"""

import json
from functools import lru_cache

from referrals.domain.model import Receipt

# Distinct receipts kept: a few thousand texts are a few MB, and a program has far
# fewer distinct ones than that in a page.
CACHED_RECEIPTS = 4096


@lru_cache(maxsize=CACHED_RECEIPTS)
def parse_receipt(text: str) -> Receipt:
    return Receipt.from_dict(json.loads(text))
