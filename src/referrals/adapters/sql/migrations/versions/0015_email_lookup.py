"""A billing system's customer matched by email: an index on the referee's lowered email
per program (with the id, so the first referral made is read first); and the other ids
a sale is known by (`sale_aliases`: Stripe's payment of an invoice).

An expression index: SQLite (3.9+) and PostgreSQL both have them, and both fill it from
the rows already here, so referrals made before this release match too.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sale_aliases",
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("sale_external_id", sa.String(128), nullable=False),
    )
    op.create_index(
        "ix_referrals_program_email",
        "referrals",
        ["program_id", sa.func.lower(sa.column("email")), "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_referrals_program_email", table_name="referrals")
    op.drop_table("sale_aliases")
