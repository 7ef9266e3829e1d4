"""Conversions reported before their user's signup: the signup slot each user takes once.

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
    op.create_table(
        "signup_slots",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("external_id", sa.String(128)),
    )


def downgrade() -> None:
    op.drop_table("signup_slots")
    op.drop_column("conversions", "awaits_signup")
