import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from referrals.config import Settings
from referrals.derived_keys import DASHBOARD_SESSION, PORTAL_LINK, secret_for
from referrals.domain import links
from referrals.domain.links import InvalidLink, LinkClaims

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def settings(secret_key: str) -> Settings:
    return Settings(secret_key=secret_key, database_url="memory://")


def test_the_key_is_the_hmac_of_the_purpose_under_the_secret() -> None:
    expected = hmac.new(b"s3cret" * 8, PORTAL_LINK, hashlib.sha256).digest()
    assert secret_for(settings("s3cret" * 8), PORTAL_LINK) == expected


def test_purposes_get_different_keys() -> None:
    assert secret_for(settings("s3cret" * 8), PORTAL_LINK) != secret_for(
        settings("s3cret" * 8), DASHBOARD_SESSION
    )


def test_secrets_get_different_keys() -> None:
    assert secret_for(settings("one" * 11), PORTAL_LINK) != secret_for(
        settings("two" * 11), PORTAL_LINK
    )


def test_a_value_signed_for_another_purpose_is_no_link() -> None:
    claims = LinkClaims("alice", "ABCD1234", int(NOW.timestamp()) + 60)
    session_signed = links.sign(secret_for(settings("s3cret" * 8), DASHBOARD_SESSION), claims)
    with pytest.raises(InvalidLink):
        links.verify(secret_for(settings("s3cret" * 8), PORTAL_LINK), session_signed, NOW)


def test_without_a_secret_the_process_draws_one_and_keeps_it() -> None:
    key = secret_for(settings(""), PORTAL_LINK)
    assert key == secret_for(settings(""), PORTAL_LINK)
    # Not a key derived from the empty string, which anyone could compute.
    assert key != hmac.new(b"", PORTAL_LINK, hashlib.sha256).digest()


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_a_short_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        settings(secret)
