"""The replay's read on DynamoDB (ports.replay): the program's referrals a page at a time,
through the referrals' own read (`ReferralRepository.search`: the `by_id` index, in id
order), each page in a read of its own.

DynamoDB has no long read to hold a snapshot in, and no Scan is allowed: this is the
same Query a list of the program's referrals pages through, mapped to the replay's
rows.
"""

from collections.abc import Callable

from referrals.adapters.dynamodb.unit_of_work import DynamoUnitOfWork
from referrals.domain.replay_rows import replay_row
from referrals.ports.replay import ReplayParts


class DynamoReplay:
    def __init__(self, read: Callable[[], DynamoUnitOfWork]) -> None:
        self._read = read  # the store's read units of work

    def rows(self, program: str, before: str, part: int) -> ReplayParts:
        after = None
        while True:
            with self._read() as uow:
                found = uow.referrals.search(None, None, after, part, program=program)
            rows = [replay_row(r) for r in found if r.id < before]
            yield rows
            if len(rows) < part:
                return
            after = rows[-1][0]
