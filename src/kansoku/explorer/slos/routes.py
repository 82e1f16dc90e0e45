"""SLOs: `/api/slos`, each SLO's error budget and burn rates."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, store_of
from kansoku.explorer.slos.budget import report
from kansoku.explorer.slos.models import Slo, SloSource
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import gettext as _

router = APIRouter()


@router.get("/api/slos", tags=["alerts"])
async def list_slos(request: Request,
                    lookback: timerange.Lookback = "24h",
                    step: timerange.Step | None = None,
                    ) -> Data[list[Slo]]:
    """The SLOs of the rules file: over each SLO's window the requests, the share that
    was good and the error budget remaining; the burn rate over 5m, 30m, 1h, 6h and 3d;
    and per step the burn rate and the budget remaining, for charts. A description
    of the packaged defaults comes in the reader's language; a rules file's own as
    written."""
    source: SloSource | None = request.app.state.slos
    if source is None:
        raise Problem(404, "alerts-disabled", _(
            "SLOs are evaluated with the alerts, which are off in this explorer "
            "(KANSOKU_EXPLORER_ALERTS_ENABLED=false)."))
    start_ns, end_ns = timerange.window(lookback)
    step_ns = timerange.step_ns(step) if step else max((end_ns - start_ns) // 60, 1_000_000_000)

    def build(store: TelemetryStore) -> list[Slo]:
        return [report(store, slo, now_ns=end_ns, lookback_ns=end_ns - start_ns,
                       step_ns=step_ns).model_copy(update={"description": source.describe(slo)})
                for slo in source.slos]
    return Data(data=await asyncio.to_thread(build, store_of(request)))
