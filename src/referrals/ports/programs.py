"""Programs and their rule versions."""

from collections.abc import Sequence
from typing import Protocol

from referrals.domain.program import Program, ProgramStatus, RuleVersion


class ProgramRepository(Protocol):
    """Programs and their rule versions. A version, once added, never changes."""

    def add(self, program: Program, first: RuleVersion) -> None:
        """Insert a program with its first rule version; raises Conflict (at the latest
        on commit) if its id is taken."""
        ...

    def get(self, program_id: str) -> Program | None: ...

    def list(self) -> Sequence[Program]:
        """Every program, by id."""
        ...

    def update(self, program: Program, status_was: ProgramStatus) -> None:
        """Replace a program's name, status, share URL template, landing URL and
        attribution settings (its id, currency and creation time never change), if its
        status is still `status_was`; raises
        Conflict (at the latest on commit) if another change came first."""
        ...

    def add_version(self, version: RuleVersion) -> None:
        """Insert the next rule version of its program; raises Conflict (at the latest on
        commit) if that number is taken (a concurrent scheduling won)."""
        ...

    def versions(self, program_id: str) -> Sequence[RuleVersion]:
        """The program's rule versions, by number (and so by effective_from)."""
        ...
