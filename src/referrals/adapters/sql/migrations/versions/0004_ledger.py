"""Payout entries besides referrals' own rewards (referee rewards, clawbacks), conversions,
and the clawback and carry-forward totals of payout runs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("referral_id", sa.String(26), sa.ForeignKey("referrals.id"), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cents", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("payable_at", sa.BigInteger, nullable=False),
        sa.Column("payout_period", sa.String(7)),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_rewards_status_id", "rewards", ["status", "id"])
    op.create_index("ix_rewards_period_user", "rewards", ["payout_period", "user_id"])
    op.create_index("ix_rewards_referral", "rewards", ["referral_id"])
    op.create_index("ix_rewards_user", "rewards", ["user_id"])
    op.create_table(
        "conversions",
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("value_cents", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("referral_id", sa.String(26)),
    )
    # NOT NULL with a default: existing runs took nothing back and carried nothing
    # forward. SQLite adds such a column in place, without rebuilding the table.
    for column in ("clawback_cents", "carried_forward_cents"):
        op.add_column(
            "payout_runs",
            sa.Column(column, sa.BigInteger, nullable=False, server_default="0"),
        )


def downgrade() -> None:
    # Plain DROP COLUMN, as in 0003 (batch mode would rebuild payout_runs for nothing).
    # Lossy, as a downgrade past new features must be: the entries go with their table
    # (referee rewards not yet paid, clawbacks not yet settled), and referrals keep
    # their awaiting and clawed_back statuses, which 0003's code cannot read: turning
    # them into pending or paid ones would pay unearned rewards or forget a reversal.
    for column in ("carried_forward_cents", "clawback_cents"):
        op.drop_column("payout_runs", column)
    op.drop_table("conversions")
    for index in ("user", "referral", "period_user", "status_id"):
        op.drop_index(f"ix_rewards_{index}", "rewards")
    op.drop_table("rewards")
