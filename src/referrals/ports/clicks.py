"""Clicks on tracked links: recorded by the redirect, read back by a signup's click id,
counted by the funnel."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.clicks import Click, ClickCount


class ClickRepository(Protocol):
    """Clicks, written once and never changed."""

    def add(self, click: Click) -> None:
        """Record a click; its id is new (144 random bits: a collision is a bug, and
        raises Conflict at the latest on commit)."""
        ...

    def get(self, click_id: str) -> Click | None:
        """The click with this id, read consistently (a signup right after its click
        finds it)."""
        ...

    def count(self, program_id: str, referrer_id: str, since: datetime, until: datetime) -> int:
        """How many clicks the referrer's links in the program had in [since, until): the
        portal's figure. Reads a key range of the referrer's clicks, never the program's."""
        ...

    def tally(self, program_id: str, since: datetime, until: datetime) -> Sequence[ClickCount]:
        """The program's clicks made in [since, until), counted per UTC day and referrer,
        by day then referrer id; days and referrers without a click are left out.
        Reads a key range of the program's clicks by time, never every click."""
        ...
