"""Payout runs' totals per currency (`payout_run_totals`): programs may be in any ISO 4217
currency, and a run never sums different currencies.

Every program was in USD before this release, so each run it completed becomes one USD
row of its own figures (a run that settled and deferred nothing has none, as a run of
this release that paid nothing). payout_runs keeps its single figures, for the code
before: a run of one currency keeps them; a run of several has 0 there.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_run_totals",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("referrer_count", sa.BigInteger, nullable=False),
        sa.Column("referral_count", sa.BigInteger, nullable=False),
        sa.Column("total_cents", sa.BigInteger, nullable=False),
        sa.Column("clawback_cents", sa.BigInteger, nullable=False),
        sa.Column("carried_forward_cents", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO payout_run_totals (period, currency, referrer_count, referral_count,"
        " total_cents, clawback_cents, carried_forward_cents)"
        " SELECT period, 'USD', referrer_count, referral_count, total_cents, clawback_cents,"
        " carried_forward_cents FROM payout_runs WHERE status = 'completed'"
        " AND (referral_count <> 0 OR carried_forward_cents <> 0)"
    )


def downgrade() -> None:
    # Lossy for a run of several currencies: the code before reads its 0 figures (it
    # had no way to show them apart). A run of one currency keeps its figures there.
    op.drop_table("payout_run_totals")
