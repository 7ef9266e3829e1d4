import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.domain import links
from referrals.domain.links import InvalidLink, LinkClaims

KEY = b"k" * 32
NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
EXPIRES = int(NOW.timestamp()) + 3600
CLAIMS = LinkClaims("alice", "ABCD1234", EXPIRES)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed(body: str, key: bytes = KEY) -> str:
    """A token over any payload text, signed as the format says: for the parser's paths."""
    return f"{body}.{b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def flip(text: str, index: int) -> str:
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


def test_a_signed_token_verifies_to_its_claims() -> None:
    assert links.verify(KEY, links.sign(KEY, CLAIMS), NOW) == CLAIMS


def test_the_token_is_the_documented_format() -> None:
    body, _ = links.sign(KEY, CLAIMS).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload == {"u": "alice", "c": "ABCD1234", "e": EXPIRES}
    assert links.sign(KEY, CLAIMS) == signed(body)


def test_a_link_works_until_the_second_before_it_expires() -> None:
    token = links.sign(KEY, CLAIMS)
    assert links.verify(KEY, token, NOW + timedelta(seconds=3599)) == CLAIMS
    with pytest.raises(InvalidLink, match="expired"):
        links.verify(KEY, token, NOW + timedelta(seconds=3600))


def test_an_expired_link_is_refused_long_after() -> None:
    with pytest.raises(InvalidLink):
        links.verify(KEY, links.sign(KEY, CLAIMS), NOW + timedelta(days=365))


def test_another_key_refuses_the_token() -> None:
    with pytest.raises(InvalidLink):
        links.verify(b"x" * 32, links.sign(KEY, CLAIMS), NOW)


def test_every_character_of_the_signature_matters() -> None:
    # Including the last: its two spare bits would slip past a compare of decoded bytes.
    token = links.sign(KEY, CLAIMS)
    start = token.index(".") + 1
    for index in range(start, len(token)):
        with pytest.raises(InvalidLink):
            links.verify(KEY, flip(token, index), NOW)


def test_every_character_of_the_payload_matters() -> None:
    token = links.sign(KEY, CLAIMS)
    for index in range(token.index(".")):
        with pytest.raises(InvalidLink):
            links.verify(KEY, flip(token, index), NOW)


def test_a_payload_rewritten_for_another_user_is_refused() -> None:
    _, signature = links.sign(KEY, CLAIMS).split(".")
    forged = b64(json.dumps({"u": "mallory", "c": "ABCD1234", "e": EXPIRES}).encode())
    with pytest.raises(InvalidLink):
        links.verify(KEY, f"{forged}.{signature}", NOW)


def test_a_later_expiry_cannot_be_grafted_on() -> None:
    _, signature = links.sign(KEY, CLAIMS).split(".")
    later = links.sign(KEY, LinkClaims("alice", "ABCD1234", EXPIRES + 10**6)).split(".")[0]
    with pytest.raises(InvalidLink):
        links.verify(KEY, f"{later}.{signature}", NOW)


GOOD = links.sign(KEY, CLAIMS)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "abc",
        "abc.",
        ".abc",
        GOOD.split(".")[0],
        GOOD + ".",
        GOOD + "=",
        GOOD + "A",
        GOOD[:-1],
        GOOD + "\n",
        " " + GOOD,
        GOOD.replace(".", ".."),
        GOOD.replace(".", "=."),
        GOOD.replace("-", "+").replace("_", "/"),
        GOOD + "." + GOOD,
        "é" * 60 + "." + "A" * 43,
        "\x00" * 100,
        "A" * (links.MAX_TOKEN_LENGTH + 1),
        GOOD.split(".")[0] * 40 + "." + GOOD.split(".")[1],
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidLink):
        links.verify(KEY, token, NOW)


@pytest.mark.parametrize("token", [None, 42, b"bytes", ["list"]])
def test_tokens_of_another_type_are_refused(token: object) -> None:
    with pytest.raises(InvalidLink):
        links.verify(KEY, token, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        "A",  # not base64: 1 character past a multiple of 4
        b64(b"\xff\xfe not utf-8"),
        b64(b"not json"),
        b64(b"[1, 2, 3]"),
        b64(b'"a string"'),
        b64(b"null"),
        b64(b"{}"),
        b64(json.dumps({"u": "alice", "c": "ABCD1234"}).encode()),
        b64(json.dumps({"u": 1, "c": "ABCD1234", "e": EXPIRES}).encode()),
        b64(json.dumps({"u": "alice", "c": None, "e": EXPIRES}).encode()),
        b64(json.dumps({"u": "alice", "c": "ABCD1234", "e": str(EXPIRES)}).encode()),
        b64(json.dumps({"u": "alice", "c": "ABCD1234", "e": float(EXPIRES)}).encode()),
        b64(json.dumps({"u": "alice", "c": "ABCD1234", "e": True}).encode()),
        b64(json.dumps({"u": "alice", "c": "ABCD1234", "e": -1}).encode()),
        b64(json.dumps({"u": "alice", "c": "ABCD1234", "e": 10**30}).encode()),
        b64(b"[" * 300 + b"]" * 300),  # nested, within the length bound
    ],
)
def test_signed_payloads_of_the_wrong_shape_are_refused(body: str) -> None:
    # Signed with the right key: only a bug or a leaked key could make these, and they
    # must still be a refusal, not a crash.
    with pytest.raises(InvalidLink):
        links.verify(KEY, signed(body), NOW)


@given(st.text(max_size=200))
def test_any_text_is_refused_with_the_module_error_only(token: str) -> None:
    with pytest.raises(InvalidLink):
        links.verify(KEY, token, NOW)


@given(st.text(alphabet="ABCDEFabcdef0123456789-_", min_size=1, max_size=300))
def test_any_signed_base64_payload_is_claims_or_refused(body: str) -> None:
    try:
        claims = links.verify(KEY, signed(body), NOW)
    except InvalidLink:
        return
    assert isinstance(claims.user_id, str) and isinstance(claims.expires_at, int)
