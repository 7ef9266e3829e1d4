"""Referral codes: generated Crockford base32, or vanity; matched case-insensitively."""

import base64
import re
import secrets
from collections.abc import Callable

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U
# RFC 4648's base32 digits, in order, as Crockford's.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD_ALPHABET.encode())
GENERATED_LENGTH = 8
VANITY_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,32}")
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")


def crockford(data: bytes) -> str:
    """`data` in Crockford base32, most significant bits first: 8 characters for each
    5 bytes (its length must be a multiple of 5, so that no padding is needed)."""
    return base64.b32encode(data).translate(_TO_CROCKFORD).decode()


def generate_code(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    # 40 random bits are 8 characters of 5 bits, each code as likely as any other: one
    # read of the system's randomness, where a draw per character took two on average.
    return crockford(random_bytes(GENERATED_LENGTH * 5 // 8))


def is_valid_code(code: str) -> bool:
    return VANITY_PATTERN.fullmatch(code) is not None


def normalize_code(code: str) -> str:
    """The key codes are stored and matched under: case does not matter."""
    return code.upper()


def is_valid_user_id(user_id: str) -> bool:
    return USER_ID_PATTERN.fullmatch(user_id) is not None
