"""Dashboard session tokens and their CSRF tokens: signed, expiring, bound to one purpose."""

from datetime import UTC, datetime, timedelta

import pytest

from referrals.config import Settings
from referrals.web import sessions

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY_ID = "01KEYID0000000000000000000"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        secret_key="unit-test-secret-0123456789abcdef0123", dashboard_session_seconds=3600
    )


def test_a_session_verifies_until_it_expires(settings: Settings) -> None:
    session = sessions.issue(settings, KEY_ID, NOW)
    assert session.expires_at == NOW + timedelta(hours=1)
    assert sessions.verify(settings, session.token, NOW) == session
    last = NOW + timedelta(minutes=59, seconds=59)
    assert sessions.verify(settings, session.token, last) == session
    assert sessions.verify(settings, session.token, NOW + timedelta(hours=1)) is None


def test_a_session_ends_with_its_key_if_that_is_sooner(settings: Settings) -> None:
    key_expires = NOW + timedelta(minutes=10, microseconds=999_999)
    session = sessions.issue(settings, KEY_ID, NOW, until=key_expires)
    assert session.expires_at == NOW + timedelta(minutes=10)  # whole seconds, not after
    assert sessions.verify(settings, session.token, NOW + timedelta(minutes=10)) is None
    later = sessions.issue(settings, KEY_ID, NOW, until=NOW + timedelta(days=1))
    assert later.expires_at == NOW + timedelta(hours=1)


def test_each_sign_in_gets_its_own_token_naming_its_record(settings: Settings) -> None:
    first, second = (sessions.issue(settings, KEY_ID, NOW) for _ in range(2))
    assert first.token != second.token and first.id != second.id
    assert first.token.split(".")[2] == first.id
    assert sessions.verify(settings, first.token, NOW).id == first.id  # type: ignore[union-attr]
    assert sessions.csrf_token(settings, first) != sessions.csrf_token(settings, second)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "x" * 300,
        "no-dots",
        "é.1.2.3",
        "..",
        f"{KEY_ID}.9999999999.nonce.forged",
        f"{KEY_ID}.notanumber.nonce.sig",
    ],
)
def test_garbage_is_no_session(settings: Settings, token: str | None) -> None:
    assert sessions.verify(settings, token, NOW) is None


def test_any_change_to_a_token_breaks_it(settings: Settings) -> None:
    token = sessions.issue(settings, KEY_ID, NOW).token
    for i, char in enumerate(token):
        changed = token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]
        assert sessions.verify(settings, changed, NOW) is None, i


def test_a_token_under_another_secret_is_refused(settings: Settings) -> None:
    other = Settings(secret_key="another-secret-0123456789abcdef0123")
    assert sessions.verify(settings, sessions.issue(other, KEY_ID, NOW).token, NOW) is None


def test_the_csrf_token_is_checked_against_the_session(settings: Settings) -> None:
    session = sessions.issue(settings, KEY_ID, NOW)
    token = sessions.csrf_token(settings, session)
    assert sessions.csrf_valid(settings, session, token)
    assert token not in session.token  # not readable from the cookie, nor the reverse
    for wrong in (None, "", token[:-1], token + "x", "é" * 10):
        assert not sessions.csrf_valid(settings, session, wrong)
