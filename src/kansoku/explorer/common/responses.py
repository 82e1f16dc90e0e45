"""The routes' helpers: the store of the app, a query run off the event loop, a trace id
checked, and the envelopes the answers come in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, Self, TypeVar

from fastapi import Path, Request
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic reads typing's only from 3.12

from kansoku.explorer.common.spans import INVALID_TRACE_ID
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.errors import Problem, invalid_parameter
from kansoku.kit.i18n import gettext as _

T = TypeVar("T")


class Data(BaseModel, Generic[T]):
    """kansoku's own endpoints answer `{"data": …}`."""

    data: T

    @classmethod
    def of(cls, data: object) -> Self:
        """The answer, `data` checked against its model."""
        return cls.model_validate({"data": data})


class JaegerAnswer(TypedDict, Generic[T]):
    """The envelope of every answer of Jaeger's query API (a TypedDict, as the traces
    in it are: see `traces.models`)."""

    data: T
    total: int
    limit: int
    offset: int
    errors: list[str] | None


def jaeger(data: Sequence[T]) -> JaegerAnswer[list[T]]:
    """Jaeger's answer holding all of `data`."""
    return {"data": list(data), "total": len(data), "limit": 0, "offset": 0, "errors": None}


def store_of(request: Request) -> TelemetryStore:
    store: TelemetryStore = request.app.state.store
    return store


async def read(request: Request, query: Callable[..., T], *args: object,
               **kwargs: object) -> T:
    """`query(store, *args, **kwargs)` in a worker thread: DuckDB blocks."""
    return await asyncio.to_thread(query, store_of(request), *args, **kwargs)


#: A trace id as the document states it: 32 hexadecimal digits.
TRACE_ID_PATTERN = r"^[0-9a-fA-F]{32}$"
#: The route parameter of a trace id.
TraceIdPath = Annotated[str, Path(pattern=TRACE_ID_PATTERN,
                                  description="32 hexadecimal digits")]


def checked_trace_id(trace_id: str, location: str = "path") -> str:
    """`trace_id` in lower case; a 422 naming the field if it is no trace id (routes
    that declare `TraceIdPath` have FastAPI check the form first). The all-zero id has
    the form but is no trace (OpenTelemetry calls it invalid): a 404 that says so."""
    trace_id = trace_id.lower()
    if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        raise invalid_parameter("trace_id", _("'{value}' is not a trace id (32 hexadecimal "
                                              "digits).").format(value=trace_id[:40]), location)
    if trace_id == INVALID_TRACE_ID:
        raise Problem(404, "trace-not-found", _(
            "The all-zero trace id is no trace: OpenTelemetry calls it invalid, and the "
            "explorer keeps no span with it."))
    return trace_id


def mib(size: int) -> str:
    """A size in bytes as a person reads it: '16 MiB', '512 KiB'."""
    return f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"
