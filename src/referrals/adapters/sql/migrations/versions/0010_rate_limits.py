"""Failed authentications are counted per client address, in the database every server
shares, so that a client sending bad keys is refused (429) by all of them once over
its limit. A row per address while its window lasts; nothing to carry over.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_failures",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_ends_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_auth_failures_window_ends_at", "auth_failures", ["window_ends_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_window_ends_at", "auth_failures")
    op.drop_table("auth_failures")
