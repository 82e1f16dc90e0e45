"""Problems: `/api/problems`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import (
    TRACE_ID_PATTERN,
    Data,
    checked_trace_id,
    read,
)
from kansoku.explorer.common.spans import INVALID_TRACE_ID
from kansoku.explorer.problems import queries
from kansoku.explorer.problems.detector import presented
from kansoku.explorer.problems.models import Problem as ProblemReport
from kansoku.explorer.problems.models import ProblemKind

router = APIRouter()


@router.get("/api/problems", tags=["kansoku"])
async def list_problems(
    request: Request,
    service: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[ProblemKind | None, Query()] = None,
    lookback: timerange.Lookback = "24h",
    trace_id: Annotated[str | None, Query(
        pattern=TRACE_ID_PATTERN,
        description="Only the problems of this trace, each with its spans (lookback is "
                    "then ignored)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Data[list[ProblemReport]]:
    """Problems the explorer detected in the traces (N+1 queries, slow queries,
    consecutive queries that could run in parallel, N+1 calls between services, error
    hotspots, endpoints slower than their baseline), the most recently seen first: each
    with its example trace, first and last seen, occurrences, impact, and what to do."""
    if trace_id is not None:
        wanted = checked_trace_id(trace_id, "query") if trace_id != INVALID_TRACE_ID else None
        # The all-zero id names no trace, so no problem either.
        found = (await read(request, queries.problems_of_trace, wanted)
                 if wanted is not None else [])
        found = [problem for problem in found if (not service or problem.service == service)
                 and (not kind or problem.kind == kind)]
    else:
        start_ns, _ = timerange.window(lookback)
        found = await read(request, queries.problems, since_ns=start_ns, service=service,
                            kind=kind, limit=limit)
    return Data(data=[presented(row) for row in found])
