"""`/api/approaches`: the Approaches page's data — the benchmark's latest figures, the
spans here by the approach that made them, and each approach's latest checkout."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import ValidationError

from kansoku.explorer.approaches import queries
from kansoku.explorer.approaches.models import MEASURED_FILE, Approaches, Measured
from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, read

logger = logging.getLogger(__name__)

router = APIRouter()

#: Files found unreadable, each said once in the log.
_UNREADABLE: set[Path] = set()


def measured(path: Path) -> Measured | None:
    """The benchmark's latest run as it wrote it; None when there is none or it cannot
    be read (said once in the log: the page still shows what the explorer holds)."""
    try:
        return Measured.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        if path not in _UNREADABLE:
            _UNREADABLE.add(path)
            logger.warning("the approaches' measured figures in %s cannot be read: %s",
                           path, str(exc).splitlines()[0])
        return None


def measured_file(request: Request) -> Path:
    """The benchmark's figures this explorer shows: the package's own (`MEASURED_FILE`)
    unless the app says otherwise."""
    path: Path = getattr(request.app.state, "approaches_file", MEASURED_FILE)
    return path


@router.get("/api/approaches", tags=["kansoku"])
async def approaches(request: Request, lookback: timerange.Lookback = "1h"
                     ) -> Data[Approaches]:
    """The instrumentation approaches: as benchmarks/approaches.py last measured them,
    the spans each made in the time range, and the latest checkout each traced."""
    start_ns, end_ns = timerange.window(lookback)
    return Data(data=Approaches(
        measured=measured(measured_file(request)),
        sources=await read(request, queries.sources, start_ns, end_ns),
        checkouts=await read(request, queries.latest_checkouts, start_ns, end_ns)))
