"""Programs and their rule versions on DynamoDB.

A program is one item in a partition of its own, `PROGRAM#<id>`, beside its rule
versions (`RULES#<number>`, zero-padded), so `get` is a GetItem and `versions` one
Query of the partition, both strongly consistent: a rules book that reads a program
must see every version scheduled before its read. Each version is written once, by
a Put conditioned on its absence, so of two schedulings of one number the second
commit is a Conflict and its use case retries with the next number.

`list` reads a listing item per program (`PROGRAMS` / `<id>`, keys only), written in
the same transaction as the program, rather than Scan the table or read an index
(eventually consistent: a program just created could be missing). Programs are few
(made by hand), so it then reads each program by its key; the listing holds no copy
of the program to keep in step on each update.
"""

from collections.abc import Sequence

from boto3.dynamodb.conditions import Attr, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import update
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.domain.errors import Conflict
from referrals.domain.program import Program, ProgramStatus, RuleVersion


class DynamoPrograms:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, program: Program, first: RuleVersion) -> None:
        main = self._tables.main
        # A transaction may write an item once: a second add in this unit of work is
        # refused here, as a taken id is at commit.
        if self._tx.touches(main, items.program_key(program.id)):
            raise Conflict(f"program {program.id!r} is already added in this unit of work")
        self._tx.create(main, items.program_item(program))
        self._tx.create(main, items.program_listing_key(program.id))
        self.add_version(first)

    def get(self, program_id: str) -> Program | None:
        item = self._tables.get(self._tables.main, items.program_key(program_id))
        return items.program(item) if item is not None else None

    def list(self) -> Sequence[Program]:
        listed = self._tables.query(
            self._tables.main, Key("pk").eq("PROGRAMS"), project="sk", consistent=True
        )
        found = (self.get(item["sk"]) for item in listed)
        # Programs are never deleted, and the listing is written with its program.
        return [program for program in found if program is not None]

    def update(self, program: Program, status_was: ProgramStatus) -> None:
        key = items.program_key(program.id)
        if self._tx.touches(self._tables.main, key):
            # DynamoDB refuses a second operation on an item in one transaction.
            raise ValueError(f"program {program.id!r} is already written in this unit of work")
        self._tx.write(
            update(
                self._tables.main,
                key,
                set={
                    "program_name": program.name,
                    "status": program.status.value,
                    "share_url_template": program.share_url_template,  # None removes it
                    "landing_url": program.landing_url,
                    "attribution_window_days": program.attribution_window_days,
                    "attribution": program.attribution.value,
                },
                # Only over the status read: a concurrent pause and archive cannot both
                # pass. A missing program fails too (an Update must not create an item).
                condition=Attr("status").eq(status_was.value),
            )
        )

    def add_version(self, version: RuleVersion) -> None:
        main = self._tables.main
        key = items.rule_version_key(version.program_id, version.version)
        if self._tx.touches(main, key):
            raise Conflict(f"rule version {version.version} is already added in this unit of work")
        self._tx.create(main, items.rule_version_item(version))

    def versions(self, program_id: str) -> Sequence[RuleVersion]:
        found = self._tables.query(
            self._tables.main,
            Key("pk").eq(items.program_pk(program_id)) & Key("sk").begins_with(items.RULES_PREFIX),
            consistent=True,
        )
        return [items.rule_version(item) for item in found]
