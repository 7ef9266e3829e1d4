"""The report hash chain linked both ways: by month and by completion.

Until now a run recorded only the sha256 of the report completed before it
(`previous_sha256`). It now names the latest earlier month paid before it
(`previous_period`, `previous_sha256`) and, apart, the run completed just before it
(`previous_completed_period`, `previous_completed_sha256`). Runs already completed
are filled in from what they recorded and when each completed.

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
    op.add_column("payout_runs", sa.Column("previous_completed_period", sa.String(7)))
    op.add_column("payout_runs", sa.Column("previous_completed_sha256", sa.String(64)))
    # The old link was by completion: it moves as it is, with the period it names.
    op.execute(
        "UPDATE payout_runs SET previous_completed_sha256 = previous_sha256, "
        "previous_completed_period = (SELECT p.period FROM payout_runs AS p "
        "WHERE p.status = 'completed' AND p.completed_at < payout_runs.completed_at "
        "ORDER BY p.completed_at DESC LIMIT 1) "
        "WHERE status = 'completed' AND previous_sha256 IS NOT NULL"
    )
    # The link by month: the latest earlier month completed before this run was.
    op.execute(
        "UPDATE payout_runs SET previous_period = (SELECT MAX(p.period) FROM payout_runs AS p "
        "WHERE p.status = 'completed' AND p.period < payout_runs.period "
        "AND p.completed_at < payout_runs.completed_at) "
        "WHERE status = 'completed'"
    )
    op.execute(
        "UPDATE payout_runs SET previous_sha256 = (SELECT p.report_sha256 FROM payout_runs AS p "
        "WHERE p.period = payout_runs.previous_period) "
        "WHERE status = 'completed'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE payout_runs SET previous_sha256 = previous_completed_sha256 "
        "WHERE status = 'completed'"
    )
    op.drop_column("payout_runs", "previous_completed_sha256")
    op.drop_column("payout_runs", "previous_completed_period")
    op.drop_column("payout_runs", "previous_period")
