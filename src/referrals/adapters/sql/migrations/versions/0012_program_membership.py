"""Membership per program: a user is a referrer, and is referred, once per program.

Referrers are keyed by (program, user); a referral's referee is unique per program,
its ordinal per referrer in the program; rewards, conversions and signup slots name
their program, and a run's lines are per user and program (indexes in that order).
Every row already here is the `default` program's (the column's
server default), which the service makes as it starts (migration 0011).

SQLite cannot change a key in place: `batch_alter_table` rebuilds those tables, with
the foreign keys off during the migration (`migrate.upgrade`), as SQLite's own
procedure for rebuilding a table prescribes. The naming convention gives SQLite's
unnamed constraints the names PostgreSQL gave them, so one set of operations drops
them on both.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# PostgreSQL's names for the constraints 0001 and 0006 left unnamed.
NAMES = {
    "pk": "%(table_name)s_pkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
}


def _program_id() -> sa.Column[str]:
    return sa.Column("program_id", sa.String(64), nullable=False, server_default="default")


def _reindex(table: str, index: str, *columns: str) -> None:
    op.drop_index(index, table_name=table)
    op.create_index(index, table, ["payout_period", *columns])


def upgrade() -> None:
    with op.batch_alter_table("referrals", naming_convention=NAMES) as referrals:
        referrals.drop_constraint("referrals_referrer_id_fkey", type_="foreignkey")
    with op.batch_alter_table("referrers", naming_convention=NAMES) as referrers:
        referrers.add_column(_program_id())
        referrers.drop_constraint("referrers_pkey", type_="primary")
        referrers.create_primary_key("referrers_pkey", ["program_id", "user_id"])
    with op.batch_alter_table("referrals", naming_convention=NAMES) as referrals:
        referrals.add_column(_program_id())
        referrals.drop_constraint("referrals_referee_id_key", type_="unique")
        referrals.drop_constraint("uq_referrals_referrer_ordinal", type_="unique")
        referrals.create_unique_constraint(
            "uq_referrals_program_referee", ["program_id", "referee_id"]
        )
        referrals.create_unique_constraint(
            "uq_referrals_referrer_ordinal", ["program_id", "referrer_id", "ordinal"]
        )
        referrals.create_foreign_key(
            "fk_referrals_referrer",
            "referrers",
            ["program_id", "referrer_id"],
            ["program_id", "user_id"],
        )
    op.add_column("rewards", _program_id())
    op.add_column("conversions", _program_id())
    # A run's lines are per user and program, read in that order through these.
    _reindex("referrals", "ix_referrals_period_referrer", "referrer_id", "program_id")
    _reindex("rewards", "ix_rewards_period_user", "user_id", "program_id")
    with op.batch_alter_table("signup_slots", naming_convention=NAMES) as slots:
        slots.add_column(_program_id())
        slots.drop_constraint("signup_slots_pkey", type_="primary")
        slots.create_primary_key("signup_slots_pkey", ["program_id", "user_id"])


def downgrade() -> None:
    # Only an instance with the default program alone can go back: the keys of the
    # release before cannot hold a user in two programs, and dropping other programs'
    # referrers would drop money owed.
    others = op.get_bind().execute(
        sa.text("SELECT count(*) FROM referrers WHERE program_id <> 'default'")
    )
    if others.scalar_one():
        raise RuntimeError("referrers of programs other than 'default' exist: cannot downgrade")
    with op.batch_alter_table("signup_slots", naming_convention=NAMES) as slots:
        slots.drop_constraint("signup_slots_pkey", type_="primary")
        slots.create_primary_key("signup_slots_pkey", ["user_id"])
        slots.drop_column("program_id")
    _reindex("referrals", "ix_referrals_period_referrer", "referrer_id")
    _reindex("rewards", "ix_rewards_period_user", "user_id")
    op.drop_column("conversions", "program_id")
    op.drop_column("rewards", "program_id")
    with op.batch_alter_table("referrals", naming_convention=NAMES) as referrals:
        referrals.drop_constraint("fk_referrals_referrer", type_="foreignkey")
        referrals.drop_constraint("uq_referrals_referrer_ordinal", type_="unique")
        referrals.drop_constraint("uq_referrals_program_referee", type_="unique")
        referrals.create_unique_constraint(
            "uq_referrals_referrer_ordinal", ["referrer_id", "ordinal"]
        )
        referrals.create_unique_constraint("referrals_referee_id_key", ["referee_id"])
        referrals.drop_column("program_id")
    with op.batch_alter_table("referrers", naming_convention=NAMES) as referrers:
        referrers.drop_constraint("referrers_pkey", type_="primary")
        referrers.create_primary_key("referrers_pkey", ["user_id"])
        referrers.drop_column("program_id")
    with op.batch_alter_table("referrals", naming_convention=NAMES) as referrals:
        referrals.create_foreign_key(
            "referrals_referrer_id_fkey", "referrers", ["referrer_id"], ["user_id"]
        )
