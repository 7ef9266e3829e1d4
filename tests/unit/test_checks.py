from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.checks import (
    FraudChecks,
    fingerprint,
    is_disposable,
    normalize_email,
    signup_checks,
    velocity_check,
)
from referrals.domain.model import Check, Referral, ReferralStatus, Referrer

NOW = datetime(2026, 3, 14, 12, tzinfo=UTC)
ALICE = Referrer("alice", "A1", "Alice.Smith@gmail.com", 3, NOW, ip_hash="ip", device_hash="dev")


@pytest.mark.parametrize(
    ("email", "mailbox"),
    [
        ("A.L.I.C.E+promo@GMail.com", "alice@gmail.com"),
        ("alice+x@googlemail.com", "alice@gmail.com"),
        ("a.lice+tag@outlook.com", "a.lice@outlook.com"),  # Outlook keeps dots
        ("a.lice+tag@example.com", "a.lice+tag@example.com"),  # unknown rules: untouched
        ("Bob@Example.COM", "bob@example.com"),
    ],
)
def test_addresses_normalise_by_their_providers_rules(email: str, mailbox: str) -> None:
    assert normalize_email(email) == mailbox


def test_disposable_domains_match_with_their_subdomains() -> None:
    assert is_disposable("x@mailinator.com")
    assert is_disposable("x@eu.Mailinator.com")
    assert not is_disposable("x@notmailinator.com")
    assert not is_disposable("x@example.com")


def test_fingerprints_are_stable_hashes_that_do_not_show_the_value() -> None:
    assert fingerprint("203.0.113.9") == fingerprint("203.0.113.9") != fingerprint("203.0.113.8")
    assert "203" not in (fingerprint("203.0.113.9") or "")
    assert fingerprint(None) is None and fingerprint("") is None


def failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_an_alias_of_the_referrers_mailbox_is_flagged() -> None:
    checks = signup_checks(FraudChecks(), ALICE, "alicesmith+2@gmail.com", None, None)
    assert failed(checks) == ["email_alias"]
    assert "mailbox" in checks[0].detail


def test_a_clean_signup_passes_every_check_that_applies() -> None:
    checks = signup_checks(FraudChecks(), ALICE, "bob@example.com", "ip-2", "dev-2")
    assert [(c.name, c.passed) for c in checks] == [
        ("email_alias", True),
        ("disposable_email", True),
        ("same_device", True),
    ]


def test_a_disposable_address_is_flagged_with_its_domain() -> None:
    checks = signup_checks(FraudChecks(), ALICE, "bob@yopmail.com", None, None)
    assert failed(checks) == ["disposable_email"]
    assert "yopmail.com" in checks[1].detail


@pytest.mark.parametrize(
    ("ip", "device", "shared"), [("ip", None, "IP address"), (None, "dev", "device")]
)
def test_the_referrers_ip_or_device_is_flagged(
    ip: str | None, device: str | None, shared: str
) -> None:
    checks = signup_checks(FraudChecks(), ALICE, None, ip, device)
    assert failed(checks) == ["same_device"]
    assert shared in checks[0].detail


def test_switched_off_checks_do_not_run() -> None:
    off = FraudChecks(email_alias=False, disposable_email=False, same_device=False)
    assert signup_checks(off, ALICE, "alice.smith@gmail.com", "ip", "dev") == []


def referral_at(moment: datetime) -> Referral:
    return Referral("r", "bob", "alice", "A1", None, 1, 1000, ReferralStatus.PENDING, moment)


def test_velocity_flags_only_when_the_earlier_referral_is_within_the_hour() -> None:
    assert not velocity_check(5, referral_at(NOW - timedelta(minutes=59)), NOW).passed
    assert velocity_check(5, referral_at(NOW - timedelta(hours=1)), NOW).passed
    assert velocity_check(5, None, NOW).passed
