import pytest

from referrals.domain.codes import (
    CROCKFORD_ALPHABET,
    generate_code,
    is_valid_code,
    is_valid_user_id,
    normalize_code,
)


def test_generated_codes_are_eight_crockford_characters() -> None:
    for _ in range(200):
        code = generate_code()
        assert len(code) == 8
        assert set(code) <= set(CROCKFORD_ALPHABET)
        assert not set(code) & set("ILOU")


def test_generation_uses_the_given_randomness() -> None:
    # 00000 11111 00000 11111 ... in 5 bytes: 0x07 0xC1 0xF0 0x7C 0x1F.
    assert generate_code(lambda n: bytes([0x07, 0xC1, 0xF0, 0x7C, 0x1F])) == "0Z0Z0Z0Z"


@pytest.mark.parametrize("code", ["abc", "ALICE-2024", "a_b-c", "x" * 32])
def test_vanity_codes_accepted(code: str) -> None:
    assert is_valid_code(code)


@pytest.mark.parametrize("code", ["", "ab", "x" * 33, "has space", "émile", "a/b", "a.b"])
def test_bad_codes_refused(code: str) -> None:
    assert not is_valid_code(code)


def test_codes_match_case_insensitively() -> None:
    assert normalize_code("Alice-1") == normalize_code("ALICE-1") == "ALICE-1"


@pytest.mark.parametrize("user_id", ["u", "user-1", "a.b:c@d+e_f", "x" * 128])
def test_valid_user_ids(user_id: str) -> None:
    assert is_valid_user_id(user_id)


@pytest.mark.parametrize("user_id", ["", "x" * 129, "a b", "a/b", "ü", "a\nb"])
def test_invalid_user_ids(user_id: str) -> None:
    assert not is_valid_user_id(user_id)
