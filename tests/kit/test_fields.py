"""The kit's field types: what PostgreSQL can hold, said the same way by the check and
by the JSON Schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from kansoku.kit.fields import (
    INT32_MAX,
    DbId,
    Offset,
    Price,
    Text,
    UtcDateTime,
    ZonedDateTime,
    id_list_pattern,
)


@pytest.mark.parametrize(("listed", "valid"), [
    ("1", True), ("2147483647", True), ("1,2,3", True), ("1999999999,2147483640", True),
    ("2147483648", False), ("9999999999", False), ("0", False), ("02", False),
    ("1,2,3,4", False), ("1,,2", False), ("", False)])
def test_an_id_list_takes_only_ids_a_database_integer_holds(listed: str, valid: bool) -> None:
    assert bool(re.fullmatch(id_list_pattern(3), listed)) == valid


@pytest.mark.parametrize(("kind", "value"), [
    (DbId, 0), (DbId, INT32_MAX + 1), (DbId, True), (Offset, -1), (Offset, 2**63),
    (Text, "a\x00b"), (Price, 12.5), (Price, "0.00"), (Price, "1.005"),
    (ZonedDateTime, "2026-01-31T00:00:00"), (ZonedDateTime, 0.5)])
def test_what_the_database_cannot_hold_is_refused(kind: Any, value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter[Any](kind).validate_python(value)


def test_a_time_is_sent_with_its_zone() -> None:
    class Stamped(BaseModel):
        at: UtcDateTime

    naive_utc = datetime(2026, 1, 31, 9, 30)
    assert Stamped(at=naive_utc).model_dump_json() == '{"at":"2026-01-31T09:30:00Z"}'
    assert Stamped(at=naive_utc.replace(tzinfo=UTC)).at == naive_utc.replace(tzinfo=UTC)


def test_each_check_is_in_the_json_schema() -> None:
    class Line(BaseModel):
        product_id: DbId
        name: Text
        price: Price

    properties = Line.model_json_schema()["properties"]
    assert (properties["product_id"]["minimum"], properties["product_id"]["maximum"]) == (
        1, INT32_MAX)
    assert properties["name"]["pattern"] == "^[^\\x00]*$"
    assert properties["price"]["type"] == "string"
