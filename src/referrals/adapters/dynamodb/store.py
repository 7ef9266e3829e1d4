"""The store ports on DynamoDB (boto3 client), for the serverless shape.

Two tables (`tables` describes them) read and written through the one client the
store is given; each unit of work commits as one transaction (`unit_of_work`).
"""

from datetime import datetime, timedelta
from typing import Any

from referrals.adapters.dynamodb import auth_failures
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.replay import DynamoReplay
from referrals.adapters.dynamodb.tables import ensure_tables
from referrals.adapters.dynamodb.unit_of_work import DynamoUnitOfWork


class DynamoStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix
        self.tables = Tables(client, prefix)
        self.replay = DynamoReplay(self.read)

    @property
    def concurrency_limit(self) -> int | None:
        return None  # no pool to wait in: every request is an HTTP call of its own

    def unit_of_work(self) -> DynamoUnitOfWork:
        return DynamoUnitOfWork(self.tables)

    def read(self) -> DynamoUnitOfWork:
        return DynamoUnitOfWork(self.tables)

    def check(self) -> None:
        self.tables.get(self.tables.main, {"pk": "HEALTH", "sk": "HEALTH"}, consistent=False)

    def check_write(self) -> None:
        # DynamoDB has no write lock to take or hold: each write stands alone.
        self.check()

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        return auth_failures.count_failure(self.tables, subject, now, window)

    def dispose(self) -> None:
        return None  # HTTP requests hold no transaction; the client may be shared

    def create_tables(self) -> None:
        """Create the tables that do not exist and check those that do (`db upgrade`).

        Idempotent: a deployed stack's tables, made by the CDK from the same
        definitions, pass as they are; a table with other keys is an error naming it.
        """
        ensure_tables(self.tables.client, self.prefix, create=True)

    def require_tables(self) -> None:
        """Check both tables as `create_tables` does, but create nothing."""
        ensure_tables(self.tables.client, self.prefix, create=False)
