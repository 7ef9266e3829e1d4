import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from referrals.config import Settings
from referrals.derived_keys import (
    DASHBOARD_CSRF,
    DASHBOARD_SESSION,
    FINGERPRINT,
    PORTAL_LINK,
    secret_for,
    serializer,
    signer,
)
from referrals.web import tokens

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def settings(secret_key: str) -> Settings:
    return Settings(secret_key=secret_key, database_url="memory://")


def test_the_key_is_the_hmac_of_the_purpose_under_the_secret() -> None:
    expected = hmac.new(b"s3cret" * 8, PORTAL_LINK, hashlib.sha256).digest()
    assert secret_for(settings("s3cret" * 8), PORTAL_LINK) == expected


def test_purposes_get_different_keys() -> None:
    purposes = [PORTAL_LINK, DASHBOARD_SESSION, DASHBOARD_CSRF, FINGERPRINT]
    assert len({secret_for(settings("s3cret" * 8), p) for p in purposes}) == len(purposes)


@pytest.mark.parametrize("purpose", [PORTAL_LINK, DASHBOARD_SESSION, DASHBOARD_CSRF])
def test_itsdangerous_signs_with_the_purposes_key(purpose: bytes) -> None:
    key = secret_for(settings("s3cret" * 8), purpose)
    assert serializer(settings("s3cret" * 8), purpose).make_signer().derive_key() == key
    assert signer(settings("s3cret" * 8), purpose).derive_key() == key


def test_secrets_get_different_keys() -> None:
    assert secret_for(settings("one" * 11), PORTAL_LINK) != secret_for(
        settings("two" * 11), PORTAL_LINK
    )


def test_a_value_signed_for_another_purpose_is_no_link() -> None:
    claims = {"u": "alice", "c": "ABCD1234", "e": int(NOW.timestamp()) + 60}
    link_signed = serializer(settings("s3cret" * 8), PORTAL_LINK).dumps(claims)
    assert tokens.verify_link(settings("s3cret" * 8), link_signed, NOW) is not None  # control
    session_signed = serializer(settings("s3cret" * 8), DASHBOARD_SESSION).dumps(claims)
    assert tokens.verify_link(settings("s3cret" * 8), session_signed, NOW) is None


def test_without_a_secret_the_process_draws_one_and_keeps_it() -> None:
    key = secret_for(settings(""), PORTAL_LINK)
    assert key == secret_for(settings(""), PORTAL_LINK)
    # Not a key derived from the empty string, which anyone could compute.
    assert key != hmac.new(b"", PORTAL_LINK, hashlib.sha256).digest()


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_a_short_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        settings(secret)
