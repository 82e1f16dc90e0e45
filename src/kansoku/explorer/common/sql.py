"""Small pieces of SQL the features' queries share."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def loads(value: str | None) -> Any:
    """A JSON column's text as Python (None for NULL or empty)."""
    return json.loads(value) if value else None


#: Write after a LIKE or ILIKE whose pattern comes from `like` or `containing`: DuckDB,
#: unlike PostgreSQL, has no escape character unless told.
ESCAPE = "ESCAPE '\\'"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like(pattern: str) -> str:
    """A pattern with * for anything as a LIKE pattern (use with `ESCAPE`)."""
    return _escaped(pattern).replace("*", "%")


def containing(text: str) -> str:
    """A LIKE pattern matching anything that contains `text` (use with `ESCAPE`)."""
    return f"%{_escaped(text)}%"


class Where:
    """A WHERE clause: conditions joined by AND, with their parameters in order."""

    def __init__(self, condition: str, *parameters: object) -> None:
        self.conditions = [condition]
        self.parameters: list[object] = list(parameters)

    def add(self, condition: str, *parameters: object) -> None:
        self.conditions.append(condition)
        self.parameters.extend(parameters)

    def add_if(self, value: object, condition: str) -> None:
        """`condition` (with one ?) for `value`, unless there is none (None or "")."""
        if value is not None and value != "":
            self.add(condition, value)

    def __str__(self) -> str:
        return " AND ".join(self.conditions)


def attribute_path(key: str) -> str:
    """`key` as a JSON pointer (DuckDB's other path form): no character of a key needs
    quoting there, only ~ and / an escape."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def attribute_filter(attributes: dict[str, str] | None) -> tuple[str, list[Any]]:
    """SQL (` AND …` for each pair) keeping rows whose `attributes` hold these values,
    with its parameters."""
    extra, parameters = "", list[Any]()
    for key, value in (attributes or {}).items():
        extra += " AND json_extract_string(attributes, ?) = ?"
        parameters += [attribute_path(key), value]
    return extra, parameters


def as_models(model: type[M], rows: Iterable[Mapping[str, Any]]) -> list[M]:
    """Rows of a query as the model they answer with (checked: a column of the wrong
    type fails here, not in a page)."""
    return [model.model_validate(row) for row in rows]
