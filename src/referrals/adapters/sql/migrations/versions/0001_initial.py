"""Referrers, referrals and API keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referrers",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("code_key", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(254)),
        sa.Column("referral_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("referee_id", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "referrer_id", sa.String(128), sa.ForeignKey("referrers.user_id"), nullable=False
        ),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("reward_cents", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("payout_period", sa.String(7)),
        sa.UniqueConstraint("referrer_id", "ordinal", name="uq_referrals_referrer_ordinal"),
    )
    op.create_index("ix_referrals_status_id", "referrals", ["status", "id"])
    op.create_index("ix_referrals_referrer_status", "referrals", ["referrer_id", "status"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_referrals_referrer_status", "referrals")
    op.drop_index("ix_referrals_status_id", "referrals")
    op.drop_table("referrals")
    op.drop_table("referrers")
