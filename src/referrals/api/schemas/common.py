"""The field types every body shares, the base of request bodies, and the answers that
belong to no resource (health, problems).

Requests forbid unknown fields and refuse coercion (but for a whole-number float where
an integer goes: JSON Schema's `integer` is one)."""

import ipaddress
from decimal import Decimal
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from referrals.domain.periods import PERIOD_REGEX


def _check_email(value: str) -> str:
    # `test_environment`: addresses under .test (RFC 6761), which staging systems use, are
    # addresses like any other here: nothing is ever mailed to them.
    try:
        validate_email(value, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return value


UserId = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$"),
]
# A program's id: a slug (domain.program checks the same).
ProgramId = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
    ),
]


Code = Annotated[
    str, StringConstraints(strict=True, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
]


Email = Annotated[
    str,
    StringConstraints(strict=True, min_length=3, max_length=254),
    AfterValidator(_check_email),
    # `idn-email`, not `email`: internationalised addresses (josé@example.com) are taken.
    Field(
        json_schema_extra={"format": "idn-email"},
        description="Checked by email-validator: no quoted local part, IP literal or special-"
        "use domain (.local, .localhost, .invalid, .onion, .arpa; .test is accepted)",
    ),
]


def _normalise_ip(value: str) -> str:
    """One spelling per address, so the same address always hashes the same."""
    if "%" in value:  # a scoped address (fe80::1%eth0) names an interface, not a client
        raise ValueError("an IP address cannot carry a zone index")
    return str(ipaddress.ip_address(value))  # ValueError: a 400 like any bad field


IpAddress = Annotated[
    str,
    StringConstraints(strict=True, min_length=2, max_length=45),
    AfterValidator(_normalise_ip),
    # JSON Schema has no `ip` format: say IPv4 or IPv6, as `ipaddress` reads them.
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}],
            "maxLength": 45,
        }
    ),
]


def _whole_number(value: object) -> object:
    """A float that is a whole number, as the int it is: JSON Schema's `integer` takes
    60.0 (JSON does not tell it from 60). Strings and booleans stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# After `Field(strict=True, ...)` in an int's Annotated: 60.0 is taken as 60, 60.5 is not.
WholeNumber = BeforeValidator(_whole_number)


DeviceId = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")
]


# Any text but control characters (PostgreSQL refuses NUL in text; logs and CSVs break),
# and more than whitespace, which the use cases strip: `str.strip()`'s, spelled out, for
# `\s` differs between regex engines (ECMA's takes U+FEFF, Python's does not).
_SPACE = r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


VISIBLE_TEXT = rf"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{_SPACE}][^\x00-\x1f\x7f]*$"


Reason = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=500, pattern=VISIBLE_TEXT)
]


# The original API answered dollars as a JSON number: 10 or 12.5, computed exactly.
Dollars = Annotated[
    Decimal,
    PlainSerializer(lambda d: int(d) if d == d.to_integral() else float(d)),
    WithJsonSchema({"type": "number", "examples": [10, 12.5]}),
]


class RequestBody(BaseModel):
    """A JSON request body: a field it does not name is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


Period = Annotated[str, StringConstraints(strict=True, pattern=f"^{PERIOD_REGEX}$")]


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    """An RFC 9457 problem document; `code` is stable, the rest is for people."""

    type: str
    title: str
    status: int
    detail: str
    code: str
