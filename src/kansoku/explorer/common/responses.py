"""The routes' helpers: the store of the app, a query run off the event loop, a trace id
checked, and the envelopes the answers come in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, Self, TypeVar

from fastapi import Request
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic reads typing's only from 3.12

from kansoku.explorer.common.spans import INVALID_TRACE_ID
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.errors import Problem

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


def checked_trace_id(trace_id: str) -> str:
    """`trace_id` in lower case; a Problem if it is no valid trace id."""
    trace_id = trace_id.lower()
    if len(trace_id) != 32 or any(c not in "0123456789abcdef" for c in trace_id):
        raise Problem(400, "bad-trace-id", f"'{trace_id[:40]}' is not a trace id "
                      "(32 hexadecimal digits).", field="trace_id")
    if trace_id == INVALID_TRACE_ID:
        raise Problem(400, "bad-trace-id", "The all-zero trace id is no trace: OpenTelemetry "
                      "calls it invalid, and the explorer keeps no span with it.",
                      field="trace_id")
    return trace_id


def mib(size: int) -> str:
    """A size in bytes as a person reads it: '16 MiB', '512 KiB'."""
    return f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size // 1024} KiB"
