"""Tables. Times are integer microseconds since the epoch (UTC): exact, sortable, portable."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

referrers = Table(
    "referrers",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("code", String(32), nullable=False),
    # Codes match case-insensitively: the upper-cased code is the unique key.
    Column("code_key", String(32), nullable=False, unique=True),
    Column("email", String(254)),
    Column("referral_count", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", String(26), primary_key=True),
    # One referral per referee, enforced by the database, not by a read.
    Column("referee_id", String(128), nullable=False, unique=True),
    Column("referrer_id", String(128), ForeignKey("referrers.user_id"), nullable=False),
    Column("code", String(32), nullable=False),
    Column("email", String(254)),
    Column("ordinal", Integer, nullable=False),
    Column("reward_cents", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("payout_period", String(7)),
    UniqueConstraint("referrer_id", "ordinal", name="uq_referrals_referrer_ordinal"),
    Index("ix_referrals_status_id", "status", "id"),
    Index("ix_referrals_referrer_status", "referrer_id", "status"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
