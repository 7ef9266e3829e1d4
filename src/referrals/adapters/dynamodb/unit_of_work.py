"""A unit of work on DynamoDB: immediate reads, writes collected for one transaction.

It reads at once (strongly consistent where DynamoDB allows it: base-table reads,
not index reads) and collects its writes into one TransactWriteItems at commit,
with conditions that make every race visible as a Conflict for the use case to
retry. Writes not committed are never sent. Payout steps that touch many items
write in bounded transactions of their own, fenced on the run's lease.
"""

from types import TracebackType
from typing import Self

from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.aliases import DynamoSaleAliases
from referrals.adapters.dynamodb.clicks import DynamoClicks
from referrals.adapters.dynamodb.keys import DynamoApiKeys, DynamoSecrets, DynamoSessions
from referrals.adapters.dynamodb.outbox import DynamoAudit, DynamoOutbox
from referrals.adapters.dynamodb.payouts import DynamoPayouts
from referrals.adapters.dynamodb.programs import DynamoPrograms
from referrals.adapters.dynamodb.referrals import DynamoReferrals
from referrals.adapters.dynamodb.referrers import DynamoReferrers
from referrals.adapters.dynamodb.rewards import DynamoConversions, DynamoRewards
from referrals.adapters.dynamodb.run_states import RunStates
from referrals.adapters.dynamodb.sales import DynamoSales
from referrals.adapters.dynamodb.stats import DynamoStats
from referrals.adapters.dynamodb.transaction import Transaction


class DynamoUnitOfWork:
    referrers: DynamoReferrers
    referrals: DynamoReferrals
    rewards: DynamoRewards
    conversions: DynamoConversions
    api_keys: DynamoApiKeys
    sessions: DynamoSessions
    secrets: DynamoSecrets
    payouts: DynamoPayouts
    programs: DynamoPrograms
    outbox: DynamoOutbox
    audit: DynamoAudit
    stats: DynamoStats
    sales: DynamoSales
    clicks: DynamoClicks
    sale_aliases: DynamoSaleAliases

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def __enter__(self) -> Self:
        tables = self.tables
        self._tx = tx = Transaction(tables)
        runs = RunStates(tables)  # the payout runs' states, as this unit of work read them
        self.referrers = DynamoReferrers(tables, tx, runs)
        self.referrals = DynamoReferrals(tables, tx, self.referrers, runs)
        self.rewards = DynamoRewards(tables, tx, runs)
        self.conversions = DynamoConversions(tables, tx)
        self.api_keys = DynamoApiKeys(tables, tx)
        self.sessions = DynamoSessions(tables, tx)
        self.secrets = DynamoSecrets(tables, tx)
        self.payouts = DynamoPayouts(tables, tx)
        self.programs = DynamoPrograms(tables, tx)
        self.outbox = DynamoOutbox(tables, tx)
        self.audit = DynamoAudit(tables, tx)
        self.stats = DynamoStats(tables, runs)
        self.sales = DynamoSales(tables, tx)
        self.clicks = DynamoClicks(tables, tx)
        self.sale_aliases = DynamoSaleAliases(tables, tx)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx.discard()  # uncommitted writes are simply never sent

    def commit(self) -> None:
        self._tx.commit()
