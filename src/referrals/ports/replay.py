"""What a simulation reads: a program's referrals as the replay needs them, streamed."""

from collections.abc import Generator, Sequence
from typing import Protocol

from referrals.domain.replay_rows import ReplayRow

# Parts of rows; closing it early ends the read.
ReplayParts = Generator[Sequence[ReplayRow], None, None]


class ReplayReader(Protocol):
    """A program's referrals for domain.simulation's replay: only what it reads of each
    (`ReplayRow`), never a whole `Referral`, in parts of a bounded size."""

    def rows(self, program: str, before: str, part: int) -> ReplayParts:
        """The program's referrals with ids before `before`, in id order, in parts of at
        most `part` rows (the last may be empty).

        Read consistently where the store can: one read transaction on SQL, held from
        the first part to the last (it ends when the iterator is exhausted or closed),
        memory bounded by a part. A store without long reads (DynamoDB) reads a page
        per request, in id order.
        """
        ...
