"""Programs as data: programs, and the chain of immutable rule versions that price their
rewards.

Only the tables: the `default` program is data the service creates as it starts
(`services.programs.ensure_default_program`), its first version built from the
settings the previous release priced with, and in force from the beginning, so the
receipts written before read as priced by it (program "default", version 1).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("share_url_template", sa.String(500)),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rule_versions",
        sa.Column("program_id", sa.String(64), sa.ForeignKey("programs.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("effective_from", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
    )


def downgrade() -> None:
    # Lossy, as a downgrade past new features must be: programs other than `default`
    # and every rule change go with the tables. The previous release prices with its
    # settings again, and receipts keep naming the program and version that priced them.
    op.drop_table("rule_versions")
    op.drop_table("programs")
