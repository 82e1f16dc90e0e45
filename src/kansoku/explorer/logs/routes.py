"""Logs: `/api/logs`, a search of the log records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, read
from kansoku.explorer.logs import queries
from kansoku.explorer.logs.models import LogRecord

router = APIRouter()


@router.get("/api/logs", tags=["kansoku"])
async def logs(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    min_severity: Annotated[int | None, Query(ge=1, le=24,
                                              description="9 info, 13 warn, 17 error")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the message")] = None,
    trace_id: Annotated[str | None, Query(max_length=32)] = None,
    lookback: timerange.Lookback = "1h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Data[list[LogRecord]]:
    """Log records, newest first; each carries its trace id, to open its trace."""
    start_ns, end_ns = timerange.window(lookback)
    return Data(data=await read(
        request, queries.search_logs, start_ns=start_ns, end_ns=end_ns, service=service,
        min_severity=min_severity, text=q, trace_id=trace_id, limit=limit))
