"""LogNotifier, and the rule that notifications carry no email."""

import logging

import pytest

from referrals.adapters.notify.log import LogNotifier
from referrals.domain.events import envelope, referral_created
from referrals.domain.model import Event, Referral
from tests.clocks import FixedClock


def test_log_notifier_logs_the_envelope(caplog: pytest.LogCaptureFixture, event: Event) -> None:
    # The log notifier is the local stand-in for webhook/SNS: same wire body, one line.
    caplog.set_level(logging.INFO, logger="referrals.events")

    LogNotifier().deliver(event)

    [record] = [r for r in caplog.records if r.name == "referrals.events"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"event {envelope(event).decode()}"


def test_referral_created_payload_carries_no_email(referral: Referral, clock: FixedClock) -> None:
    # Notifications leave the system; the referee's email must not go with them.
    assert referral.email is not None and "@" in referral.email

    body = envelope(referral_created(referral, clock.now()))

    assert b"@" not in body
    assert referral.email.split("@")[0].encode() not in body


def test_logged_referral_created_line_carries_no_email(
    caplog: pytest.LogCaptureFixture, referral: Referral, clock: FixedClock
) -> None:
    # Logs are shipped and retained too: the line written must be free of the email.
    caplog.set_level(logging.INFO, logger="referrals.events")

    LogNotifier().deliver(referral_created(referral, clock.now()))

    assert "referral.created" in caplog.text
    assert "@" not in caplog.text
