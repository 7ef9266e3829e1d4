"""Signed tokens: dashboard sessions and their CSRF tokens, and portal links. Each verifies
until it expires and for its own purpose only; anything else is no token, never an error."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import base64_encode

from referrals.config import Settings
from referrals.derived_keys import DASHBOARD_SESSION, PORTAL_LINK, serializer
from referrals.domain.links import LinkClaims
from referrals.web import tokens

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY_ID = "01KEYID0000000000000000000"
SETTINGS = Settings(
    secret_key="unit-test-secret-0123456789abcdef0123", dashboard_session_seconds=3600
)
OTHER = Settings(secret_key="another-secret-0123456789abcdef0123")
EXPIRES = int(NOW.timestamp()) + 3600
CLAIMS = LinkClaims("alice", "ABCD1234", EXPIRES)
LINK = tokens.sign_link(SETTINGS, CLAIMS)


def flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] == "A" else "A") + text[index + 1 :]


def signed(payload: bytes, purpose: bytes = PORTAL_LINK) -> str:
    """Any payload bytes, signed with the right key as a token is: for the parser's paths."""
    signer = serializer(SETTINGS, purpose).make_signer()
    return signer.sign(base64_encode(payload)).decode()


def signed_value(value: object, purpose: bytes = PORTAL_LINK) -> str:
    """Any JSON value, signed with the right key as a token is."""
    return serializer(SETTINGS, purpose).dumps(value)


def compact(value: object) -> bytes:
    """JSON as the tokens' serializer writes it: the spelling it takes."""
    return json.dumps(value, separators=(",", ":")).encode()


def payload_of(token: str, purpose: bytes = PORTAL_LINK) -> object:
    return serializer(SETTINGS, purpose).loads(token)


# Dashboard sessions


def test_a_session_verifies_until_it_expires() -> None:
    session = tokens.issue_session(SETTINGS, KEY_ID, NOW)
    assert session.expires_at == NOW + timedelta(hours=1)
    assert tokens.verify_session(SETTINGS, session.token, NOW) == session
    last = NOW + timedelta(minutes=59, seconds=59)
    assert tokens.verify_session(SETTINGS, session.token, last) == session
    assert tokens.verify_session(SETTINGS, session.token, NOW + timedelta(hours=1)) is None


def test_a_session_ends_with_its_key_if_that_is_sooner() -> None:
    key_expires = NOW + timedelta(minutes=10, microseconds=999_999)
    session = tokens.issue_session(SETTINGS, KEY_ID, NOW, until=key_expires)
    assert session.expires_at == NOW + timedelta(minutes=10)  # whole seconds, not after
    assert tokens.verify_session(SETTINGS, session.token, NOW + timedelta(minutes=10)) is None
    later = tokens.issue_session(SETTINGS, KEY_ID, NOW, until=NOW + timedelta(days=1))
    assert later.expires_at == NOW + timedelta(hours=1)


def test_each_sign_in_gets_its_own_token_naming_its_record() -> None:
    first, second = (tokens.issue_session(SETTINGS, KEY_ID, NOW) for _ in range(2))
    assert first.token != second.token and first.id != second.id
    assert payload_of(first.token, DASHBOARD_SESSION) == {"k": KEY_ID, "s": first.id, "e": EXPIRES}
    assert tokens.verify_session(SETTINGS, first.token, NOW).id == first.id  # type: ignore[union-attr]
    assert tokens.csrf_token(SETTINGS, first) != tokens.csrf_token(SETTINGS, second)


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
        "A" * 2000,
    ],
)
def test_garbage_is_no_session(token: str | None) -> None:
    assert tokens.verify_session(SETTINGS, token, NOW) is None


def test_any_change_to_a_session_token_breaks_it() -> None:
    token = tokens.issue_session(SETTINGS, KEY_ID, NOW).token
    for i in range(len(token)):
        assert tokens.verify_session(SETTINGS, flip(token, i), NOW) is None, i


def test_another_key_id_under_the_original_signature_is_refused() -> None:
    session = tokens.issue_session(SETTINGS, KEY_ID, NOW)
    signature = session.token.rpartition(".")[2]
    forged = {"k": "0" * 26, "s": session.id, "e": EXPIRES}
    body = base64_encode(json.dumps(forged, separators=(",", ":")).encode()).decode()
    assert tokens.verify_session(SETTINGS, f"{body}.{signature}", NOW) is None


def test_a_session_under_another_secret_is_refused() -> None:
    token = tokens.issue_session(OTHER, KEY_ID, NOW).token
    assert tokens.verify_session(SETTINGS, token, NOW) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"s": "nonce", "e": EXPIRES},
        {"k": "", "s": "nonce", "e": EXPIRES},
        {"k": KEY_ID, "e": EXPIRES},
        {"k": KEY_ID, "s": 7, "e": EXPIRES},
        {"k": KEY_ID, "s": "nonce", "e": str(EXPIRES)},
    ],
)
def test_a_signed_session_of_the_wrong_shape_is_refused(payload: object) -> None:
    token = signed_value(payload, DASHBOARD_SESSION)
    assert tokens.verify_session(SETTINGS, token, NOW) is None


def test_the_csrf_token_is_checked_against_the_session() -> None:
    session = tokens.issue_session(SETTINGS, KEY_ID, NOW)
    token = tokens.csrf_token(SETTINGS, session)
    assert tokens.csrf_valid(SETTINGS, session, token)
    assert token not in session.token  # not readable from the cookie, nor the reverse
    for wrong in (None, "", token[:-1], token + "x", "é" * 10, "A" * 2000):
        assert not tokens.csrf_valid(SETTINGS, session, wrong)


def test_a_csrf_token_is_good_for_its_own_session_and_secret_only() -> None:
    first, second = (tokens.issue_session(SETTINGS, KEY_ID, NOW) for _ in range(2))
    assert not tokens.csrf_valid(SETTINGS, second, tokens.csrf_token(SETTINGS, first))
    assert not tokens.csrf_valid(SETTINGS, first, tokens.csrf_token(OTHER, first))


# Portal links


def test_a_link_verifies_to_its_claims_until_the_second_before_it_expires() -> None:
    assert payload_of(LINK) == {"u": "alice", "c": "ABCD1234", "e": EXPIRES}
    assert tokens.verify_link(SETTINGS, LINK, NOW) == CLAIMS
    assert tokens.verify_link(SETTINGS, LINK, NOW + timedelta(seconds=3599)) == CLAIMS
    assert tokens.verify_link(SETTINGS, LINK, NOW + timedelta(seconds=3600)) is None
    assert tokens.verify_link(SETTINGS, LINK, NOW + timedelta(days=365)) is None


def test_a_link_under_another_secret_is_refused() -> None:
    assert tokens.verify_link(SETTINGS, tokens.sign_link(OTHER, CLAIMS), NOW) is None


def test_every_character_of_a_link_matters() -> None:
    for index in range(len(LINK)):
        assert tokens.verify_link(SETTINGS, flip(LINK, index), NOW) is None, index


def test_a_payload_rewritten_for_another_user_is_refused() -> None:
    signature = LINK.rpartition(".")[2]
    forged = base64_encode(json.dumps({"u": "mallory", "c": "ABCD1234", "e": EXPIRES}).encode())
    assert tokens.verify_link(SETTINGS, f"{forged.decode()}.{signature}", NOW) is None


def test_a_later_expiry_cannot_be_grafted_on() -> None:
    signature = LINK.rpartition(".")[2]
    later = tokens.sign_link(SETTINGS, LinkClaims("alice", "ABCD1234", EXPIRES + 10**6))
    assert tokens.verify_link(SETTINGS, f"{later.rpartition('.')[0]}.{signature}", NOW) is None


def test_the_standard_base64_spelling_of_a_link_is_refused() -> None:
    # Base64's other alphabet decodes to the same bytes: still not the token issued.
    links = (
        tokens.sign_link(SETTINGS, LinkClaims(f"u{n}", "ABCD1234", EXPIRES)) for n in range(99)
    )
    link = next(link for link in links if "-" in link or "_" in link)
    assert tokens.verify_link(SETTINGS, link, NOW) is not None
    assert tokens.verify_link(SETTINGS, link.replace("-", "+").replace("_", "/"), NOW) is None


def test_a_session_token_is_no_link_and_a_link_no_session() -> None:
    session = tokens.issue_session(SETTINGS, KEY_ID, NOW)
    assert tokens.verify_link(SETTINGS, session.token, NOW) is None
    assert tokens.verify_session(SETTINGS, LINK, NOW) is None


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        ".",
        "..",
        "abc",
        "abc.",
        ".abc",
        LINK.rpartition(".")[0],
        LINK + ".",
        LINK + "=",
        LINK + "A",
        LINK[:-1],
        LINK + "\n",
        " " + LINK,
        LINK.replace(".", ".."),
        LINK + "." + LINK,
        "é" * 60 + "." + "A" * 43,
        "\x00" * 100,
        "A" * (tokens.MAX_TOKEN + 1),
        LINK.rpartition(".")[0] * 40 + "." + LINK.rpartition(".")[2],
    ],
)
def test_malformed_links_are_refused(token: str | None) -> None:
    assert tokens.verify_link(SETTINGS, token, NOW) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe not utf-8",
        b"not json",
        b"[" * 300 + b"]" * 300,  # nested, within the length bound
    ],
)
def test_signed_links_that_are_not_json_are_refused(payload: bytes) -> None:
    assert tokens.verify_link(SETTINGS, signed(payload), NOW) is None


@pytest.mark.parametrize(
    "value",
    [
        [1, 2, 3],
        "a string",
        None,
        {},
        {"u": "alice", "c": "ABCD1234"},
        {"u": 1, "c": "ABCD1234", "e": EXPIRES},
        {"u": "alice", "c": None, "e": EXPIRES},
        {"u": "alice", "c": "ABCD1234", "e": str(EXPIRES)},
        {"u": "alice", "c": "ABCD1234", "e": float(EXPIRES)},
        {"u": "alice", "c": "ABCD1234", "e": True},
        {"u": "alice", "c": "ABCD1234", "e": -1},
        {"u": "alice", "c": "ABCD1234", "e": 10**30},
    ],
)
def test_signed_links_of_the_wrong_shape_are_refused(value: object) -> None:
    # Signed with the right key: only another version of the app, a bug or a leaked key
    # could make these, and they must still be a refusal, not a crash.
    assert tokens.verify_link(SETTINGS, signed_value(value), NOW) is None


def test_a_link_signed_by_hand_with_the_right_claims_verifies() -> None:
    # The control of the two tests above: it is their payloads that are refused.
    value = {"u": "alice", "c": "ABCD1234", "e": EXPIRES}
    assert tokens.verify_link(SETTINGS, signed(compact(value)), NOW) == CLAIMS
    assert tokens.verify_link(SETTINGS, signed_value(value), NOW) == CLAIMS


CLAIM_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)


@given(st.binary(max_size=300) | st.dictionaries(st.sampled_from("uce"), CLAIM_VALUES).map(compact))
def test_any_signed_payload_is_claims_or_no_link(payload: bytes) -> None:
    claims = tokens.verify_link(SETTINGS, signed(payload), NOW)
    if claims is not None:
        assert isinstance(claims.user_id, str) and type(claims.expires_at) is int
