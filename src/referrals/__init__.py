"""referrals: referral codes, tiered rewards and exactly-once monthly payouts."""

__version__ = "0.1.0"
