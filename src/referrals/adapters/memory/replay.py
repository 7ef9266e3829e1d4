"""The replay's read on the in-memory store (ports.replay): one consistent snapshot.

A commit publishes a new state and never changes a published one, so the state taken
under the lock stays as it was for the whole read, however long the replay takes.
"""

from typing import TYPE_CHECKING

from referrals.domain.replay_rows import replay_row
from referrals.ports.replay import ReplayParts

if TYPE_CHECKING:
    from referrals.adapters.memory import MemoryStore


class MemoryReplay:
    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def rows(self, program: str, before: str, part: int) -> ReplayParts:
        with self._store.lock:
            state = self._store.state
        found = sorted(
            (r for r in state.referrals.values() if r.program_id == program and r.id < before),
            key=lambda r: r.id,
        )
        for start in range(0, len(found), part):
            yield [replay_row(r) for r in found[start : start + part]]
