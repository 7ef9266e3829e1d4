"""A secret the service keeps for itself when REFERRALS_SECRET_KEY is not set.

Without a configured secret, `referrals serve` used to draw a random one per start:
portal links and dashboard sessions died at every restart, and keyed fingerprints
would stop matching. The service now generates one secret, once, and keeps it in
this table (insert if absent; every process reads the same row). A configured
REFERRALS_SECRET_KEY always wins; the kept secret is readable by whoever can read
the database, so production should configure one.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_secrets")
