"""Real-user monitoring: `/api/vitals`, the browsers' Web Vitals and errors."""

from __future__ import annotations

from fastapi import APIRouter, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, read
from kansoku.explorer.rum import queries
from kansoku.explorer.rum.models import Threshold, Vitals

router = APIRouter()


@router.get("/api/vitals", tags=["kansoku"])
async def vitals(request: Request, lookback: timerange.Lookback = "1h") -> Data[Vitals]:
    """Real users' Web Vitals per page at p75, rated good / needs-improvement / poor by
    web-vitals' thresholds, and their JavaScript errors."""
    start_ns, end_ns = timerange.window(lookback)
    return Data(data=Vitals(
        vitals=await read(request, queries.web_vitals, start_ns, end_ns),
        errors=await read(request, queries.browser_errors, start_ns, end_ns),
        thresholds={name: Threshold(good=good, poor=poor)
                    for name, (good, poor) in queries.VITAL_THRESHOLDS.items()}))
