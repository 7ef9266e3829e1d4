"""API keys get a lifecycle, and dashboard sessions a record on the server.

Keys gain a name, an expiry (set at creation, or by a rotation's grace period), a
revocation time and when they were last used; existing keys keep working as they
did (no expiry, not revoked). Sessions are a new table: the sessions signed in
before this migration had no record, so they end and their users sign in again.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("name", sa.String(64)))
    op.add_column("api_keys", sa.Column("expires_at", sa.BigInteger))
    op.add_column("api_keys", sa.Column("revoked_at", sa.BigInteger))
    op.add_column("api_keys", sa.Column("last_used_at", sa.BigInteger))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(26), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
    )


def downgrade() -> None:
    op.drop_table("sessions")
    for column in ("last_used_at", "revoked_at", "expires_at", "name"):
        op.drop_column("api_keys", column)
