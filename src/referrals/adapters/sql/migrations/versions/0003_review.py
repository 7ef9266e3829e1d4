"""Hold periods, receipts and review notes on referrals, referrer fingerprints, the audit log.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referrers", sa.Column("ip_hash", sa.String(64)))
    op.add_column("referrers", sa.Column("device_hash", sa.String(64)))
    # payable_at is NOT NULL with no default: add it empty, fill it (rewards earned
    # before holds existed were payable at once), then require it. On SQLite the
    # last step rebuilds the table (batch mode: nothing references referrals, so
    # dropping the old copy passes the foreign key check); PostgreSQL alters it in place.
    op.add_column("referrals", sa.Column("payable_at", sa.BigInteger))
    op.add_column("referrals", sa.Column("receipt", sa.Text))
    op.add_column("referrals", sa.Column("note", sa.Text))
    op.execute("UPDATE referrals SET payable_at = created_at")
    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("payable_at", existing_type=sa.BigInteger, nullable=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, which RETURNING needs anyway): batch mode would
    # rebuild referrers, and dropping it fails the foreign key check of referrals.
    # Held, rejected and reversed rewards keep their status: 0002's code cannot read
    # them, and turning them into pending ones would pay rewards refused in review.
    op.drop_table("audit_log")
    for column in ("note", "receipt", "payable_at"):
        op.drop_column("referrals", column)
    for column in ("device_hash", "ip_hash"):
        op.drop_column("referrers", column)
