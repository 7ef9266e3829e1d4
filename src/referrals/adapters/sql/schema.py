"""Tables. Times are integer microseconds since the epoch (UTC): exact, sortable, portable
(`MicrosTime` converts them to and from `datetime`)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

from referrals.adapters.sql.types import MicrosTime

metadata = MetaData()


def _program_id(*, primary_key: bool = False) -> Column[str]:
    # Rows from before programs existed are the default program's (migration 0012).
    return Column(
        "program_id", String(64), primary_key=primary_key, nullable=False, server_default="default"
    )


# A user is a referrer once per program; a code is unique across programs, so a
# signup's code finds its program.
referrers = Table(
    "referrers",
    metadata,
    _program_id(primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("code", String(32), nullable=False),
    # Codes match case-insensitively: the upper-cased code is the unique key.
    Column("code_key", String(32), nullable=False, unique=True),
    Column("email", String(254)),
    Column("referral_count", Integer, nullable=False, server_default="0"),
    Column("created_at", MicrosTime, nullable=False),
    # Hashes of where the referrer signed up from: a referee from the same one is flagged.
    Column("ip_hash", String(64)),
    Column("device_hash", String(64)),
    # What the caps count (domain Referrer.counting): updated under the row's lock.
    Column("cap_lifetime_cents", BigInteger, nullable=False, server_default="0"),
    Column("cap_month", String(7)),
    Column("cap_month_cents", BigInteger, nullable=False, server_default="0"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", String(26), primary_key=True),
    _program_id(),
    Column("referee_id", String(128), nullable=False),
    Column("referrer_id", String(128), nullable=False),
    Column("code", String(32), nullable=False),
    Column("email", String(254)),
    Column("ordinal", Integer, nullable=False),
    Column("reward_cents", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("payout_period", String(7)),
    # created_at + the hold: a run pays the pending rewards payable before its cutoff.
    Column("payable_at", MicrosTime, nullable=False),
    Column("receipt", Text),  # how the reward was priced and checked, compact JSON
    Column("note", Text),  # the reason given by the last review or reversal
    Column("click_id", String(32)),  # the tracked link's click it came from (0013)
    # One referral per referee in a program, enforced by the database, not by a read.
    UniqueConstraint("program_id", "referee_id", name="uq_referrals_program_referee"),
    ForeignKeyConstraint(
        ["program_id", "referrer_id"],
        ["referrers.program_id", "referrers.user_id"],
        name="fk_referrals_referrer",
    ),
    UniqueConstraint("program_id", "referrer_id", "ordinal", name="uq_referrals_referrer_ordinal"),
    # A run walks the pending rewards in id order through this index and filters
    # payable_at on the row: ids grow with created_at and holds are short and
    # mostly equal, so nearly every pending row it visits before the cutoff is
    # payable; (status, payable_at) could not give the id order the batches resume by.
    # The review queue (held, by id) reads it too.
    Index("ix_referrals_status_id", "status", "id"),
    Index("ix_referrals_referrer_status", "referrer_id", "status"),
    # A run aggregates its lines (per user and program) and completes its rewards
    # through this index, never a scan.
    Index("ix_referrals_period_referrer", "payout_period", "referrer_id", "program_id"),
)

# A billing system's customer is matched to the referee who signed up with their email
# (services/stripe_sync.py): case-insensitively, per program, the first referral first.
Index(
    "ix_referrals_program_email",
    referrals.c.program_id,
    func.lower(referrals.c.email),
    referrals.c.id,
)

# Other ids a sale is known by (ports.aliases): Stripe's payment of an invoice. Not a
# foreign key: the link may come before the sale it names.
sale_aliases = Table(
    "sale_aliases",
    metadata,
    Column("alias", String(128), primary_key=True),
    Column("sale_external_id", String(128), nullable=False),
)

# Payout entries besides a referral's own reward: a referee's reward (positive) and
# clawbacks of paid rewards (negative), paid to user_id by the same runs, in the same states.
rewards = Table(
    "rewards",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("referral_id", String(26), ForeignKey("referrals.id"), nullable=False),
    Column("user_id", String(128), nullable=False),  # the user paid: not always a referrer
    _program_id(),  # its referral's
    Column("kind", String(16), nullable=False),
    Column("cents", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("payable_at", MicrosTime, nullable=False),  # created_at + the hold
    Column("payout_period", String(7)),
    Column("note", Text),
    Column("sale_id", String(128)),  # a revenue share's (or its clawback's) sale
    # The same access paths as referrals': a run walks the pending entries by id,
    # then aggregates, releases and completes its own through (period, user).
    Index("ix_rewards_status_id", "status", "id"),
    Index("ix_rewards_period_user", "payout_period", "user_id", "program_id"),
    Index("ix_rewards_referral", "referral_id"),
    Index("ix_rewards_user", "user_id"),  # a user's earnings
)

# Programs as data (domain/program.py): a program, and its chain of immutable rule
# versions, numbered 1..n per program. The primary key makes two concurrent schedulings
# of the same number collide, so one of them retries with the next.
programs = Table(
    "programs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("share_url_template", String(500)),
    Column("created_at", MicrosTime, nullable=False),
    # Tracked links and attribution (migration 0013).
    Column("landing_url", String(500)),
    Column("attribution_window_days", Integer, nullable=False, server_default="30"),
    Column("attribution", String(8), nullable=False, server_default="first"),
)

rule_versions = Table(
    "rule_versions",
    metadata,
    Column("program_id", String(64), ForeignKey("programs.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("effective_from", MicrosTime, nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    # The rules (RuleVersion.to_dict) as compact JSON: read and written whole, never
    # queried by their parts, and their shape grows with the rules, not the schema.
    Column("rules", Text, nullable=False),
)

# Qualifying events reported by the product (a purchase, a subscription), once per id.
conversions = Table(
    "conversions",
    metadata,
    Column("external_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("event", String(64), nullable=False),
    Column("value_cents", BigInteger),
    Column("created_at", MicrosTime, nullable=False),
    # Not a foreign key: a conversion is recorded as reported, whatever it qualified.
    Column("referral_id", String(26)),
    Column("awaits_signup", Boolean, nullable=False, server_default=false()),
    _program_id(),
)

# One per user and conversion program, taken by whichever comes first: a conversion
# before the user's signup (its external id) or the signup (NULL). The primary key
# makes a concurrent conversion and signup of one user collide, so neither misses
# the other.
signup_slots = Table(
    "signup_slots",
    metadata,
    _program_id(primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("external_id", String(128)),
)

# Clicks on tracked links (domain/clicks.py), written once. The funnel counts a
# program's clicks per day and referrer in a window through (program_id, at): a key
# range, never every click. IP address and user agent only as keyed hashes.
clicks = Table(
    "clicks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("program_id", String(64), nullable=False),
    Column("code", String(32), nullable=False),
    Column("referrer_id", String(128), nullable=False),
    Column("at", MicrosTime, nullable=False),
    Column("ip_hash", String(64)),
    Column("ua_hash", String(64)),
    Column("referring_site", String(253)),
    Column("utm_source", String(100)),
    Column("utm_medium", String(100)),
    Column("utm_campaign", String(100)),
    Column("utm_term", String(100)),
    Column("utm_content", String(100)),
    Index("ix_clicks_program_at", "program_id", "at"),
    Index("ix_clicks_referrer_at", "program_id", "referrer_id", "at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("name", String(64)),
    # A rotation is a new key, the old one's expiry set to the end of its grace period.
    Column("expires_at", MicrosTime),
    Column("revoked_at", MicrosTime),
    Column("last_used_at", MicrosTime),  # written at most once a minute per key
)

# Dashboard sign-ins: the signed cookie names one, and it is live only while this row
# is (not ended, not expired) and its key is (not revoked, not expired).
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key_id", String(26), ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("expires_at", MicrosTime, nullable=False),
    Column("ended_at", MicrosTime),
)

# The secret the service keeps when REFERRALS_SECRET_KEY is not set: created once
# (insert if absent), read by every process, so what it signs outlives a restart.
service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
)

# Failed authentications by client address in fixed windows (api/ratelimits.py),
# shared by every server of the database: a row per address, deleted once its window
# has ended (by a later count, through the index).
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("subject", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_ends_at", MicrosTime, nullable=False),
    Index("ix_auth_failures_window_ends_at", "window_ends_at"),
)

payout_runs = Table(
    "payout_runs",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("cutoff", MicrosTime, nullable=False),
    Column("started_at", MicrosTime, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", MicrosTime),
    Column("referrer_count", BigInteger, nullable=False, server_default="0"),
    Column("referral_count", BigInteger, nullable=False, server_default="0"),
    Column("total_cents", BigInteger, nullable=False, server_default="0"),
    Column("report_key", String(200)),
    Column("report_sha256", String(64)),
    # The report hash chain: the link by month, then the link by completion.
    Column("previous_month_period", String(7)),
    Column("previous_month_sha256", String(64)),
    Column("previous_period", String(7)),
    Column("previous_sha256", String(64)),
    Column("completed_at", MicrosTime),
    Column("error", Text),
    # Taken back by the run's clawback lines (a positive sum), and left for a later
    # run by users whose total was below the minimum payout.
    Column("clawback_cents", BigInteger, nullable=False, server_default="0"),
    Column("carried_forward_cents", BigInteger, nullable=False, server_default="0"),
    Index("ix_payout_runs_status_completed", "status", "completed_at"),
)

# What a completed run settled per currency (domain.model.CurrencyTotal): a run pays
# programs in several currencies and never sums them. payout_runs' own total_cents,
# clawback_cents and carried_forward_cents keep the run's one currency's figures for
# readers of the release before this table (0 in a run of several currencies); a run
# with no row here was completed by that release, in USD.
payout_run_totals = Table(
    "payout_run_totals",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("referrer_count", BigInteger, nullable=False),
    Column("referral_count", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("clawback_cents", BigInteger, nullable=False),
    Column("carried_forward_cents", BigInteger, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", MicrosTime),
    Column("last_error", Text),
    Index("ix_outbox_status_due", "status", "next_attempt_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(26), primary_key=True),  # a ULID: listed newest first by id
    Column("at", MicrosTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("reason", Text),
)

# Sales and refunds (domain/sales.py), once per external id. A sale's refunded total
# moves by a conditional update (on the total read), so refunds never exceed it; the
# funnel's tally reads both by (program, occurred_at), never every row.
sales = Table(
    "sales",
    metadata,
    Column("external_id", String(128), primary_key=True),
    _program_id(),
    Column("user_id", String(128), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("occurred_at", MicrosTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Column("referral_id", String(26)),  # None: unattributed
    Column("referrer_id", String(128)),
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("reward_id", String(26)),  # the share entry it earned, if any
    Column("share_bps", Integer, nullable=False, server_default="0"),
    Column("share_ceiling_minor", BigInteger, nullable=False, server_default="0"),
    Column("awarded_minor", BigInteger, nullable=False, server_default="0"),
    Column("receipt", Text),
    Index("ix_sales_program_occurred", "program_id", "occurred_at"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("sale_external_id", String(128), ForeignKey("sales.external_id"), nullable=False),
    # The billing system's refund id: unique, so a replay is found and a race collides.
    Column("external_id", String(128), unique=True),
    _program_id(),
    Column("referrer_id", String(128)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reversed_minor", BigInteger, nullable=False),
    Column("occurred_at", MicrosTime, nullable=False),
    Column("created_at", MicrosTime, nullable=False),
    Index("ix_refunds_sale", "sale_external_id"),
    Index("ix_refunds_program_occurred", "program_id", "occurred_at"),
)
