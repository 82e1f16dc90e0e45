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


def counter_increase(name: str, start_ns: int, end_ns: int,
                     attributes: dict[str, str] | None = None, *, end_inclusive: bool
                     ) -> tuple[str, list[Any]]:
    """SQL, with its parameters, for how much each series of the counter `name` (its
    `service`, `attributes` as text, temporality) grew from `start_ns` to `end_ns` (that
    instant included or not), as `increase`; only series with a point in the window,
    and with `attributes`' values when given. A cumulative series grew by its last value
    in the window minus its last value before it (0 for a series that began inside the
    window: its whole count happened there); delta points are summed."""
    extra, attribute_parameters = attribute_filter(attributes)
    return (
        "SELECT service, attributes, CASE WHEN temporality = 'delta' THEN inside ELSE "
        "greatest(last_inside - coalesce(last_before, 0), 0) END AS increase FROM ("
        "SELECT service, CAST(attributes AS VARCHAR) AS attributes, temporality, "
        "sum(value) FILTER (WHERE time_ns >= ?) AS inside, "
        "arg_max(value, time_ns) FILTER (WHERE time_ns >= ?) AS last_inside, "
        "arg_max(value, time_ns) FILTER (WHERE time_ns < ?) AS last_before "
        f"FROM metric_points WHERE name = ? AND time_ns {'<=' if end_inclusive else '<'} ? "
        f"{extra} GROUP BY service, CAST(attributes AS VARCHAR), temporality) "
        "WHERE last_inside IS NOT NULL",
        [start_ns, start_ns, start_ns, name, end_ns, *attribute_parameters])
