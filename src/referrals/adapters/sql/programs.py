"""Programs and their rule versions on SQL.

A version is written once and never changed: its number is part of the primary key,
so of two concurrent schedulings of the same number the second breaks the key and
raises Conflict, and its use case retries with the next number.
"""

from collections.abc import Sequence

from sqlalchemy import insert, select, update

from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import programs, rule_versions
from referrals.domain.program import Program, ProgramStatus, RuleVersion


class SqlPrograms(Repository):
    def add(self, program: Program, first: RuleVersion) -> None:
        values = {
            "id": program.id,
            "name": program.name,
            "currency": program.currency,
            "status": program.status.value,
            "share_url_template": program.share_url_template,
            "created_at": program.created_at,
            "landing_url": program.landing_url,
            "attribution_window_days": program.attribution_window_days,
            "attribution": program.attribution.value,
        }
        self._execute(insert(programs), values)
        self.add_version(first)

    def get(self, program_id: str) -> Program | None:
        row = self._execute(select(programs).where(programs.c.id == program_id)).first()
        return rows.program(row) if row else None

    def list(self) -> Sequence[Program]:
        query = select(programs).order_by(self._byte_order(programs.c.id))
        return [rows.program(row) for row in self._execute(query)]

    def update(self, program: Program, status_was: ProgramStatus) -> None:
        statement = (
            update(programs)
            .where(programs.c.id == program.id, programs.c.status == status_was.value)
            .values(
                name=program.name,
                status=program.status.value,
                share_url_template=program.share_url_template,
                landing_url=program.landing_url,
                attribution_window_days=program.attribution_window_days,
                attribution=program.attribution.value,
            )
        )
        # Programs are never deleted: no row is a status changed since it was read.
        self._change_one(statement, {}, f"program {program.id!r} changed meanwhile")

    def add_version(self, version: RuleVersion) -> None:
        values = {
            "program_id": version.program_id,
            "version": version.version,
            "effective_from": version.effective_from,
            "created_at": version.created_at,
            "rules": rows.rules_json(version),
        }
        self._execute(insert(rule_versions), values)

    def versions(self, program_id: str) -> Sequence[RuleVersion]:
        query = (
            select(rule_versions)
            .where(rule_versions.c.program_id == program_id)
            .order_by(rule_versions.c.version)
        )
        return [rows.rule_version(row) for row in self._execute(query)]
