"""Conversions reported before their user's signup, found by the signup.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversions",
        sa.Column("awaits_signup", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_conversions_user", "conversions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_conversions_user", "conversions")
    op.drop_column("conversions", "awaits_signup")
