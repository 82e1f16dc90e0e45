"""Types for the fields every service's API shares, so that what a request may carry is
checked once, at the edge, and documented the same way everywhere.

What PostgreSQL can store decides the ranges: an `integer` column holds at most 2^31 - 1
and `OFFSET` takes a `bigint`, so an id or quantity past those, or a `text` value with a
NUL character (which PostgreSQL refuses to store or compare), is the caller's mistake —
a 422 naming the field — never a database error answered as a 500.

    product_id: DbId                    # a path, query or body field
    offset: Annotated[Offset, Query()] = 0
    name: Text = Field(min_length=1, max_length=200)
    created_at: UtcDateTime             # a response field: always with its zone
    since: Annotated[ZonedDateTime | None, Query()] = None

A check's message is in the reader's language (the request's, while FastAPI validates
it); the kit's validation handler words it as pydantic's "Value error, …".

Each type's JSON Schema says the same as its check (`maximum`, a `pattern` without NUL,
`format: date-time`), so a generated client or a fuzzer learns the rule from the
OpenAPI document.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from kansoku.kit.i18n import _

#: The largest value of a PostgreSQL `integer` (int4): ids and quantities are stored so.
INT32_MAX: Final = 2**31 - 1
#: The largest value of a PostgreSQL `bigint` (int8): what `OFFSET` takes.
INT64_MAX: Final = 2**63 - 1

#: Text PostgreSQL can store: anything but the NUL character.
WITHOUT_NUL: Final = r"^[^\x00]*$"

def _not_a_boolean(value: Any) -> Any:
    """pydantic takes `true` for 1; a JSON boolean is no number."""
    if isinstance(value, bool):
        raise ValueError(_("give a whole number, not true or false"))
    return value


#: A whole number, never a boolean; narrow it with `Field(ge=…, le=…)` on the field.
#: (The types below put their range first and this check last: a range given around
#: an annotated type would not reach the JSON Schema as `minimum`/`maximum`.)
Whole = Annotated[int, BeforeValidator(_not_a_boolean)]

#: A database id: a positive PostgreSQL `integer`.
DbId = Annotated[int, Field(ge=1, le=INT32_MAX), BeforeValidator(_not_a_boolean)]

#: How many rows of a list to skip (`OFFSET`, a PostgreSQL `bigint`).
Offset = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(_not_a_boolean)]

#: A `DbId` written out: 1 to 2147483647, without leading zeros (for lists in a query).
DB_ID_DIGITS: Final = (
    r"(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
    r"|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
    r"|21474836[0-3][0-9]|214748364[0-7])")


def id_list_pattern(most: int) -> str:
    """The pattern of a comma-separated list of 1 to `most` ids (`3,17,42`)."""
    return rf"^{DB_ID_DIGITS}(?:,{DB_ID_DIGITS}){{0,{most - 1}}}$"


#: A message's sequence number in a JetStream stream (they start at 1).
StreamSequence = Annotated[int, Field(ge=1, le=INT64_MAX), BeforeValidator(_not_a_boolean)]

#: A whole number a PostgreSQL `integer` column holds (a quantity, a change of stock);
#: narrow it further with `Field(ge=…, le=…)` where the domain says so.
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX),
                  BeforeValidator(_not_a_boolean)]

#: Text that can be stored and searched: no NUL character.
Text = Annotated[str, Field(pattern=WITHOUT_NUL)]


def _as_utc(value: datetime) -> datetime:
    """The same moment in UTC; a time without a zone is taken as UTC, which is how every
    service stores time (`kit.clock.utc_now`)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: A moment in a response, always sent with its zone (`2026-01-31T09:30:00Z`), as the
#: `date-time` format requires: the database's naive UTC times are marked as UTC.
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]

#: RFC 3339's date-time: a date, `T`, a time and a zone (`Z` or `±hh:mm`).
_RFC3339 = re.compile(
    r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", re.ASCII)


def _rfc3339(value: Any) -> Any:
    """Only an RFC 3339 date-time with its zone: pydantic alone would also take a bare
    number as seconds since the epoch, or a date, which the `date-time` format refuses."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(_("give a date and time with its zone, e.g. "
                           "2026-01-31T00:00:00Z"))
    return value


#: A moment a caller sends (a query's `since`): RFC 3339 with its zone, kept in UTC.
ZonedDateTime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_as_utc)]


def as_naive_utc(value: datetime) -> datetime:
    """`value` in UTC without its zone, as the services' `timestamp` columns hold time."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


#: A price or amount as the contract carries it: a decimal string with at most two
#: places and ten whole digits, more than zero (`"1299.99"`). A JSON number would be
#: read as binary floating point on the way (0.1 + 0.2), so only a string is taken.
_PRICE_PATTERN: Final = (r"^(?:[1-9][0-9]{0,9}(?:\.[0-9]{1,2})?"
                         r"|0\.(?:[1-9][0-9]?|0[1-9]))$")


def _price_string(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or not re.fullmatch(_PRICE_PATTERN, value):
        raise ValueError(_('give the price as a decimal string with at most two places, '
                           'more than zero, e.g. "1299.99"'))
    return value


Price = Annotated[
    Decimal,
    BeforeValidator(_price_string),
    WithJsonSchema({"type": "string", "pattern": _PRICE_PATTERN,
                    "examples": ["1299.99"],
                    "description": "A decimal string with at most two places, more than "
                                   "zero"}),
]
