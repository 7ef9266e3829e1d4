"""Programs and their rule versions, in memory."""

from collections.abc import Sequence
from dataclasses import replace

from referrals.adapters.memory.state import State
from referrals.domain.errors import Conflict
from referrals.domain.program import Program, ProgramStatus, RuleVersion


class MemoryPrograms:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, program: Program, first: RuleVersion) -> None:
        if program.id in self._s.programs:
            raise Conflict("program exists")
        self._s.programs[program.id] = program
        self._s.rule_versions[program.id] = [first]

    def get(self, program_id: str) -> Program | None:
        return self._s.programs.get(program_id)

    def list(self) -> Sequence[Program]:
        return [self._s.programs[key] for key in sorted(self._s.programs)]

    def update(self, program: Program, status_was: ProgramStatus) -> None:
        current = self._s.programs.get(program.id)
        if current is None or current.status is not status_was:
            raise Conflict("the program changed meanwhile")
        self._s.programs[program.id] = replace(
            current,
            name=program.name,
            status=program.status,
            share_url_template=program.share_url_template,
            landing_url=program.landing_url,
            attribution_window_days=program.attribution_window_days,
            attribution=program.attribution,
        )

    def add_version(self, version: RuleVersion) -> None:
        chain = self._s.rule_versions.setdefault(version.program_id, [])
        if any(v.version == version.version for v in chain):
            raise Conflict("rule version exists")
        chain.append(version)
        chain.sort(key=lambda v: v.version)

    def versions(self, program_id: str) -> Sequence[RuleVersion]:
        return list(self._s.rule_versions.get(program_id, []))
