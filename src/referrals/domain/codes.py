"""Referral codes: generated Crockford base32, or vanity; matched case-insensitively."""

import re
import secrets
from collections.abc import Callable

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
GENERATED_LENGTH = 8
VANITY_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,32}")
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")


def generate_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    return "".join(CROCKFORD_ALPHABET[randbelow(32)] for _ in range(GENERATED_LENGTH))


def is_valid_code(code: str) -> bool:
    return VANITY_PATTERN.fullmatch(code) is not None


def normalize_code(code: str) -> str:
    """The key codes are stored and matched under: case does not matter."""
    return code.upper()


def is_valid_user_id(user_id: str) -> bool:
    return USER_ID_PATTERN.fullmatch(user_id) is not None
