"""Tracked links: the clicks on referrers' links, and programs' landing URL and attribution.

`clicks` is written once per click by the public redirect and read by a signup's
click id (its key) and by the funnel, a program's clicks per day and referrer in a
window, through the `(program_id, at)` index. Programs gain their landing URL (none:
no tracked links, as before) and attribution settings, every existing program with
the defaults (30 days, first click). A referral keeps the click it came from, if any.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("program_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("referrer_id", sa.String(128), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("ip_hash", sa.String(64)),
        sa.Column("ua_hash", sa.String(64)),
        sa.Column("referring_site", sa.String(253)),
        sa.Column("utm_source", sa.String(100)),
        sa.Column("utm_medium", sa.String(100)),
        sa.Column("utm_campaign", sa.String(100)),
        sa.Column("utm_term", sa.String(100)),
        sa.Column("utm_content", sa.String(100)),
    )
    op.create_index("ix_clicks_program_at", "clicks", ["program_id", "at"])
    op.create_index("ix_clicks_referrer_at", "clicks", ["program_id", "referrer_id", "at"])
    op.add_column("programs", sa.Column("landing_url", sa.String(500)))
    op.add_column(
        "programs",
        sa.Column("attribution_window_days", sa.Integer, nullable=False, server_default="30"),
    )
    op.add_column(
        "programs", sa.Column("attribution", sa.String(8), nullable=False, server_default="first")
    )
    op.add_column("referrals", sa.Column("click_id", sa.String(32)))


def downgrade() -> None:
    # Lossy, as a downgrade past new features must be: the clicks, the landing URLs and
    # the settings go, and referrals forget which click they came from (their rewards
    # and everything the previous release reads stay as they are).
    with op.batch_alter_table("referrals") as referrals:
        referrals.drop_column("click_id")
    with op.batch_alter_table("programs") as programs:
        programs.drop_column("attribution")
        programs.drop_column("attribution_window_days")
        programs.drop_column("landing_url")
    op.drop_index("ix_clicks_referrer_at", table_name="clicks")
    op.drop_index("ix_clicks_program_at", table_name="clicks")
    op.drop_table("clicks")
