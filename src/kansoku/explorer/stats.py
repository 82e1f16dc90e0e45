"""`/api/stats`: what the explorer received, what waits, how big the store is, and how
far problem detection and alerting got. Not a feature of its own: it reports on the
others, as the app wires them (`app.state.problems`, `app.state.alerts`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel

from kansoku.explorer.alerts.evaluator import AlertEvaluator
from kansoku.explorer.alerts.models import AlertingStats
from kansoku.explorer.common.responses import read, store_of
from kansoku.explorer.problems.detector import ProblemDetector
from kansoku.explorer.problems.models import DetectionStats
from kansoku.explorer.traces.queries import services

router = APIRouter()


class Stats(BaseModel):
    received: dict[str, int]
    pending_rows: int
    store_bytes: int
    services: list[str]
    problems: DetectionStats | None
    alerts: AlertingStats | None


@router.get("/api/stats", tags=["kansoku"])
async def stats(request: Request) -> Stats:
    """What arrived since the explorer started, what waits to be written, the size of
    the store, and how far problem detection got."""
    store = store_of(request)
    size = await asyncio.to_thread(store.size_bytes)
    detector: ProblemDetector | None = request.app.state.problems
    evaluator: AlertEvaluator | None = request.app.state.alerts
    return Stats(received=dict(store.received), pending_rows=store.pending_rows,
                 store_bytes=size, services=await read(request, services),
                 problems=detector.stats() if detector else None,
                 alerts=evaluator.stats() if evaluator else None)
