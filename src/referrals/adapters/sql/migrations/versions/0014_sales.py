"""Sales and refunds, and the revenue-share rewards priced from them.

Two new tables (see `schema.sales` and `schema.refunds`), and the sale a reward entry
came from (`rewards.sale_id`): NULL on every entry already here, none of which is a
share.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _program_id() -> sa.Column[str]:
    return sa.Column("program_id", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    op.add_column("rewards", sa.Column("sale_id", sa.String(128)))
    op.create_table(
        "sales",
        sa.Column("external_id", sa.String(128), primary_key=True),
        _program_id(),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("referral_id", sa.String(26)),
        sa.Column("referrer_id", sa.String(128)),
        sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reward_id", sa.String(26)),
        sa.Column("share_bps", sa.Integer, nullable=False, server_default="0"),
        sa.Column("share_ceiling_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("awarded_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("receipt", sa.Text),
    )
    op.create_index("ix_sales_program_occurred", "sales", ["program_id", "occurred_at"])
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column(
            "sale_external_id",
            sa.String(128),
            sa.ForeignKey("sales.external_id"),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(128), unique=True),
        _program_id(),
        sa.Column("referrer_id", sa.String(128)),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("reversed_minor", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_refunds_sale", "refunds", ["sale_external_id"])
    op.create_index("ix_refunds_program_occurred", "refunds", ["program_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_refunds_program_occurred", table_name="refunds")
    op.drop_index("ix_refunds_sale", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_sales_program_occurred", table_name="sales")
    op.drop_table("sales")
    with op.batch_alter_table("rewards") as rewards:
        rewards.drop_column("sale_id")
