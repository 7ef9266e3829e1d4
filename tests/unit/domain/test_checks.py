import hashlib
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.checks import (
    KEYED,
    CheckMode,
    Fingerprints,
    FraudChecks,
    fingerprint,
    is_disposable,
    normalize_email,
    signup_checks,
    unkeyed_fingerprint,
    velocity_check,
)
from referrals.domain.model import Check, Receipt, Referral, ReferralStatus, Referrer

NOW = datetime(2026, 3, 14, 12, tzinfo=UTC)
KEY = b"unit-test-fingerprint-key-0123456789"
PRINTS = Fingerprints(KEY)
ALICE_IP, ALICE_DEVICE = "198.51.100.7", "alices-phone"
ALICE = Referrer(
    "alice",
    "A1",
    "Alice.Smith@gmail.com",
    3,
    NOW,
    ip_hash=fingerprint(KEY, ALICE_IP),
    device_hash=fingerprint(KEY, ALICE_DEVICE),
)


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
    same = fingerprint(KEY, "203.0.113.9")
    assert same == fingerprint(KEY, "203.0.113.9") != fingerprint(KEY, "203.0.113.8")
    assert "203" not in (same or "")
    assert fingerprint(KEY, None) is None and fingerprint(KEY, "") is None
    assert PRINTS(None) is None and PRINTS("") is None


def test_a_fingerprint_is_keyed_not_a_plain_hash() -> None:
    stored = fingerprint(KEY, "192.0.2.1")
    assert stored is not None and stored.startswith(KEYED) and len(stored) <= 64
    digest = hashlib.sha256(b"192.0.2.1").hexdigest()
    assert stored.removeprefix(KEYED) not in (digest, digest[:32])
    assert stored != unkeyed_fingerprint("192.0.2.1")
    assert stored != fingerprint(b"another-secret-0123456789abcdef0123", "192.0.2.1")


def test_a_brute_force_without_the_key_reads_nothing_back() -> None:
    """What an attacker with the database but not the secret can try: every address
    of a range, hashed as fingerprints used to be. It found one in 0.1 s before."""
    target = "192.0.2.77"
    stored = fingerprint(KEY, target)
    candidates = [str(ip) for ip in ipaddress.ip_network("192.0.0.0/22")]
    assert target in candidates
    unkeyed = {unkeyed_fingerprint(ip) for ip in candidates}
    plain = {hashlib.sha256(ip.encode()).hexdigest() for ip in candidates}
    assert not {stored, (stored or "").removeprefix(KEYED)} & (unkeyed | plain)
    other_key = {fingerprint(b"guessed-secret-0123456789abcdef012", ip) for ip in candidates}
    assert stored not in other_key
    # With the key it is found: the key, not the hash, is what protects the address.
    assert [ip for ip in candidates if fingerprint(KEY, ip) == stored] == [target]


def test_a_signups_fingerprint_matches_the_keyed_form_and_an_unkeyed_one_from_before() -> None:
    seen = PRINTS("198.51.100.7")
    assert seen is not None
    assert seen.matches(fingerprint(KEY, "198.51.100.7"))
    # Stored before fingerprints were keyed: still compared, in its own form.
    assert seen.matches(hashlib.sha256(b"198.51.100.7").hexdigest()[:32])
    assert not seen.matches(hashlib.sha256(b"198.51.100.8").hexdigest()[:32])
    assert not seen.matches(fingerprint(b"another-secret-0123456789abcdef0123", "198.51.100.7"))
    assert not seen.matches(None)
    # What is kept of it is the keyed form only.
    assert seen.stored == fingerprint(KEY, "198.51.100.7")
    assert KEY.decode() not in repr(PRINTS)  # nor is the key shown in logs


def failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


def test_an_alias_of_the_referrers_mailbox_is_flagged() -> None:
    checks = signup_checks(FraudChecks(), ALICE, "alicesmith+2@gmail.com", None, None)
    assert failed(checks) == ["email_alias"]
    assert "mailbox" in checks[0].detail


def test_a_clean_signup_passes_every_check_that_applies() -> None:
    checks = signup_checks(
        FraudChecks(), ALICE, "bob@example.com", PRINTS("198.51.100.8"), PRINTS("bobs-phone")
    )
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
    ("ip", "device", "shared"),
    [(ALICE_IP, None, "IP address"), (None, ALICE_DEVICE, "device")],
)
def test_the_referrers_ip_or_device_is_flagged(
    ip: str | None, device: str | None, shared: str
) -> None:
    checks = signup_checks(FraudChecks(), ALICE, None, PRINTS(ip), PRINTS(device))
    assert failed(checks) == ["same_device"]
    assert shared in checks[0].detail


def test_a_referrer_fingerprinted_before_keying_is_still_compared() -> None:
    before = Referrer(
        "carol",
        "C1",
        None,
        1,
        NOW,
        ip_hash=unkeyed_fingerprint(ALICE_IP),
        device_hash=unkeyed_fingerprint(ALICE_DEVICE),
    )
    checks = signup_checks(FraudChecks(), before, None, PRINTS(ALICE_IP), PRINTS(ALICE_DEVICE))
    assert failed(checks) == ["same_device"]
    assert "IP address and device" in checks[0].detail
    other = signup_checks(FraudChecks(), before, None, PRINTS("198.51.100.8"), None)
    assert failed(other) == []


def test_switched_off_checks_do_not_run() -> None:
    off = FraudChecks(
        email_alias=CheckMode.OFF, disposable_email=CheckMode.OFF, same_device=CheckMode.OFF
    )
    ip, device = PRINTS(ALICE_IP), PRINTS(ALICE_DEVICE)
    assert signup_checks(off, ALICE, "alice.smith@gmail.com", ip, device) == []


def test_a_check_in_shadow_mode_keeps_its_verdict_but_holds_nothing() -> None:
    shadow = FraudChecks(email_alias=CheckMode.SHADOW)
    checks = signup_checks(shadow, ALICE, "alicesmith+2@gmail.com", None, None)
    alias = next(check for check in checks if check.name == "email_alias")
    assert not alias.passed and alias.shadow
    receipt = Receipt("signup", 1, 1000, checks=tuple(checks))
    assert receipt.flagged == (alias,) and receipt.failed == ()
    assert Receipt.from_dict(receipt.to_dict()) == receipt


def test_modes_read_back_from_their_dict() -> None:
    checks = FraudChecks(CheckMode.OFF, CheckMode.SHADOW, CheckMode.HOLD, CheckMode.SHADOW, 7)
    assert FraudChecks.from_dict(checks.to_dict()) == checks
    assert FraudChecks.from_dict({}) == FraudChecks()
    assert not FraudChecks(velocity_per_hour=0).velocity_runs
    assert not FraudChecks(velocity=CheckMode.OFF, velocity_per_hour=3).velocity_runs


def referral_at(moment: datetime) -> Referral:
    return Referral("r", "bob", "alice", "A1", None, 1, 1000, ReferralStatus.PENDING, moment)


def test_velocity_flags_only_when_the_earlier_referral_is_within_the_hour() -> None:
    assert not velocity_check(5, referral_at(NOW - timedelta(minutes=59)), NOW).passed
    assert velocity_check(5, referral_at(NOW - timedelta(hours=1)), NOW).passed
    assert velocity_check(5, None, NOW).passed
