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


def like(pattern: str) -> str:
    """A pattern with * for anything as a LIKE pattern (escape: backslash)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


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
