"""Clicks on tracked links on DynamoDB.

One item per click, written once (a Put conditioned on its absence), in the main table:

| attribute | value |
|---|---|
| `pk`, `sk` | `CLICK#<click id>`, `CLICK`: `get` is one strongly consistent GetItem (1 RCU) |
| `kind` | `CLICKS#<program id>#<YYYY-MM-DD>`: the click's program and UTC day |
| `id` | `<at, 16-digit microseconds>#<click id>`: its time, unique |
| `click_id`, `program_id`, `code`, `referrer_id`, `at` | the click |
| `ip_hash`, `ua_hash`, `referring_site`, `utm_*` | when present (None is left out) |

`referrer_pk` = `CLICKS#<program id>#<referrer id>` puts it in `by_referrer_id_keys`
(`referrer_pk`, `id`, keys only) too, in a partition of its own (lists of referrals and entries
read `REFERRER#...` partitions, never these): a referrer's count for the portal is one
Query of a key range, `Select=COUNT`.

`kind` and `id` put the click in the `by_id` index (`kind`, `id`), which referrals
use with `kind` = `REFERRAL` only: a program's clicks of one day are one partition of
it, in time order, so the funnel's tally is one Query per day of its window, on a
key range of `id` ([since, until) as 16-digit prefixes), projecting the referrer
alone; never a Scan. A partition per day, not per program: a busy program's clicks
spread over partitions instead of all writing one. The index is eventually
consistent: a click made a moment ago may be missing from a tally, never from `get`.

A click has none of the other indexes' keys (`status_pk`, `period_pk`), so
lists of referrals and payouts never see it.

A click costs one Put in a transaction of its own (2 WCU for an item under 1 KB)
plus 1 WCU for each copy, in `by_id` and `by_referrer_id_keys`: 4 WCU.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime

from boto3.dynamodb.conditions import Key

from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.clicks import Click, ClickCount, day_of, days_between

INDEX = "by_id"
REFERRER_INDEX = "by_referrer_id_keys"
_OPTIONAL = (
    "ip_hash",
    "ua_hash",
    "referring_site",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)


def click_key(click_id: str) -> Values:
    return {"pk": f"CLICK#{click_id}", "sk": "CLICK"}


def day_partition(program_id: str, day: date) -> str:
    return f"CLICKS#{program_id}#{day.isoformat()}"


def referrer_partition(program_id: str, referrer_id: str) -> str:
    return f"CLICKS#{program_id}#{referrer_id}"


def _instant(micros: int) -> str:
    return f"{max(micros, 0):016d}"


def click_item(c: Click) -> Values:
    at = to_micros(c.at)
    return {
        **click_key(c.id),
        "kind": day_partition(c.program_id, day_of(c.at)),
        "referrer_pk": referrer_partition(c.program_id, c.referrer_id),
        "id": f"{_instant(at)}#{c.id}",
        "click_id": c.id,
        "program_id": c.program_id,
        "code": c.code,
        "referrer_id": c.referrer_id,
        "at": at,
        **{name: getattr(c, name) for name in _OPTIONAL},
    }


def click(item: Values) -> Click:
    return Click(
        id=item["click_id"],
        program_id=item["program_id"],
        code=item["code"],
        referrer_id=item["referrer_id"],
        at=from_micros(int(item["at"])),
        **{name: item.get(name) for name in _OPTIONAL},
    )


class DynamoClicks:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, c: Click) -> None:
        self._tx.create(self._tables.main, click_item(c))

    def get(self, click_id: str) -> Click | None:
        item = self._tables.get(self._tables.main, click_key(click_id))
        return click(item) if item is not None else None

    def count(self, program_id: str, referrer_id: str, since: datetime, until: datetime) -> int:
        low, high = _instant(to_micros(since)), _instant(to_micros(until))
        partition = Key("referrer_pk").eq(referrer_partition(program_id, referrer_id))
        return self._tables.count(
            self._tables.main, partition & Key("id").between(low, high), index=REFERRER_INDEX
        )

    def tally(self, program_id: str, since: datetime, until: datetime) -> Sequence[ClickCount]:
        low, high = _instant(to_micros(since)), _instant(to_micros(until))
        counts: list[ClickCount] = []
        for day in days_between(since, until):
            found = self._tables.query(
                self._tables.main,
                Key("kind").eq(day_partition(program_id, day)) & Key("id").between(low, high),
                index=INDEX,
                project="referrer_id",
            )
            per_referrer = Counter(item["referrer_id"] for item in found)
            counts += [ClickCount(day, r, n) for r, n in sorted(per_referrer.items())]
        return counts
