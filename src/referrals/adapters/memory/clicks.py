"""Clicks on tracked links, in memory."""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from referrals.adapters.memory.state import State
from referrals.domain.clicks import Click, ClickCount, day_of
from referrals.domain.errors import Conflict


class MemoryClicks:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, click: Click) -> None:
        if click.id in self._s.clicks:
            raise Conflict("click id exists")
        self._s.clicks[click.id] = click

    def get(self, click_id: str) -> Click | None:
        return self._s.clicks.get(click_id)

    def count(self, program_id: str, referrer_id: str, since: datetime, until: datetime) -> int:
        return sum(
            1
            for c in self._s.clicks.values()
            if (c.program_id, c.referrer_id) == (program_id, referrer_id) and since <= c.at < until
        )

    def tally(self, program_id: str, since: datetime, until: datetime) -> Sequence[ClickCount]:
        counts = Counter(
            (day_of(c.at), c.referrer_id)
            for c in self._s.clicks.values()
            if c.program_id == program_id and since <= c.at < until
        )
        return [
            ClickCount(day, referrer, n)
            for (day, referrer), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ]
