"""Counters of what each referrer earned, for the monthly and lifetime caps.

The lifetime counter starts from the rewards already earned and not cancelled; the
month counter starts empty and fills from the first reward after the upgrade.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COUNTED = ("pending", "held", "processing", "paid")


def upgrade() -> None:
    op.add_column(
        "referrers",
        sa.Column("cap_lifetime_cents", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column("referrers", sa.Column("cap_month", sa.String(7)))
    op.add_column(
        "referrers",
        sa.Column("cap_month_cents", sa.BigInteger, nullable=False, server_default="0"),
    )
    statuses = ", ".join(f"'{status}'" for status in COUNTED)
    # Through ix_referrals_referrer_status: one index range per referrer.
    op.execute(
        "UPDATE referrers SET cap_lifetime_cents = COALESCE((SELECT SUM(reward_cents) "
        "FROM referrals WHERE referrals.referrer_id = referrers.user_id "
        f"AND referrals.status IN ({statuses})), 0)"
    )


def downgrade() -> None:
    # Plain DROP COLUMN, as 0003: batch mode would rebuild referrers.
    for column in ("cap_month_cents", "cap_month", "cap_lifetime_cents"):
        op.drop_column("referrers", column)
