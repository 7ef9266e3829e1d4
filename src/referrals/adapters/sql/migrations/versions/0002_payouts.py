"""Payout runs, the outbox, and the index a run aggregates through.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_referrals_period_referrer", "referrals", ["payout_period", "referrer_id"])
    op.create_table(
        "payout_runs",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cutoff", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires_at", sa.BigInteger),
        sa.Column("referrer_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("referral_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total_cents", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("report_key", sa.String(200)),
        sa.Column("report_sha256", sa.String(64)),
        sa.Column("previous_sha256", sa.String(64)),
        sa.Column("completed_at", sa.BigInteger),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_payout_runs_status_completed", "payout_runs", ["status", "completed_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_outbox_status_due", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_due", "outbox")
    op.drop_table("outbox")
    op.drop_index("ix_payout_runs_status_completed", "payout_runs")
    op.drop_table("payout_runs")
    op.drop_index("ix_referrals_period_referrer", "referrals")
