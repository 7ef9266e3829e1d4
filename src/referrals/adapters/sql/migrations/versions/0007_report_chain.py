"""The report hash chain linked both ways: by completion and by month.

`previous_sha256` keeps its meaning, the report of the run completed just before
this one, and gains the period it names (`previous_period`). The link by month is
new: the latest earlier month paid before this run completed
(`previous_month_period`, `previous_month_sha256`). Runs already completed are
filled in from when each completed.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payout_runs", sa.Column("previous_period", sa.String(7)))
    op.add_column("payout_runs", sa.Column("previous_month_period", sa.String(7)))
    op.add_column("payout_runs", sa.Column("previous_month_sha256", sa.String(64)))
    op.execute(
        "UPDATE payout_runs SET previous_period = (SELECT p.period FROM payout_runs AS p "
        "WHERE p.status = 'completed' AND p.completed_at < payout_runs.completed_at "
        "ORDER BY p.completed_at DESC LIMIT 1) "
        "WHERE status = 'completed' AND previous_sha256 IS NOT NULL"
    )
    op.execute(
        "UPDATE payout_runs SET previous_month_period = (SELECT MAX(p.period) "
        "FROM payout_runs AS p WHERE p.status = 'completed' AND p.period < payout_runs.period "
        "AND p.completed_at < payout_runs.completed_at) "
        "WHERE status = 'completed'"
    )
    op.execute(
        "UPDATE payout_runs SET previous_month_sha256 = (SELECT p.report_sha256 "
        "FROM payout_runs AS p WHERE p.period = payout_runs.previous_month_period) "
        "WHERE status = 'completed'"
    )


def downgrade() -> None:
    op.drop_column("payout_runs", "previous_month_sha256")
    op.drop_column("payout_runs", "previous_month_period")
    op.drop_column("payout_runs", "previous_period")
