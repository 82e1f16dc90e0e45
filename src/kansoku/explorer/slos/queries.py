"""The SLOs' SQL: a journey's requests and bad requests, in all and per step."""

from __future__ import annotations

from typing import Any, assert_never

from kansoku.explorer.common.spans import FAILED_REQUEST
from kansoku.explorer.slos.models import SLO, SloKind, SloStep
from kansoku.explorer.store import TelemetryStore

#: SQL over `spans`: the request did not succeed — an error status, or an answer other
#: than 2xx (a journey's end: a declined payment is an unpaid checkout).
NOT_SUCCEEDED = "(status = 'error' OR coalesce(http_status, 0) NOT BETWEEN 200 AND 299)"


def _counted(slo: SLO) -> tuple[str, str, list[Any]]:
    """SQL over `spans`: which spans the SLO counts (with its parameters), and which of
    those are bad."""
    counted = "kind = 'server' AND service = ? AND (name = ANY(?::VARCHAR[])"
    parameters: list[Any] = [slo.service, list(slo.operations)]
    match slo.kind:
        case SloKind.AVAILABILITY:
            return counted + ")", FAILED_REQUEST, parameters
        case SloKind.LATENCY:
            return counted + ")", f"duration_ns > {int((slo.threshold or 0) * 1e9)}", parameters
        case SloKind.JOURNEY:
            # The end counts whatever it answered; an earlier step only when it failed
            # (then it is a bad journey, as NOT_SUCCEEDED says of a failure).
            return (counted + f" OR (name = ANY(?::VARCHAR[]) AND {FAILED_REQUEST}))",
                    NOT_SUCCEEDED, [*parameters, list(slo.steps)])
        case _:
            assert_never(slo.kind)


def slo_counts(store: TelemetryStore, slo: SLO, *, start_ns: int, end_ns: int
               ) -> tuple[int, int]:
    """(requests, bad requests) of the SLO's journey in [start, end): bad = failed, or
    slower than the threshold (latency), or not succeeded (journey; `_counted`)."""
    counted, bad, parameters = _counted(slo)
    rows = store.rows(
        f"SELECT count(*) AS total, count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        f"WHERE {counted} AND start_ns >= ? AND start_ns < ?", [*parameters, start_ns, end_ns])
    return int(rows[0]["total"]), int(rows[0]["bad"])


def slo_steps(store: TelemetryStore, slo: SLO, *, start_ns: int, end_ns: int, step_ns: int
              ) -> list[SloStep]:
    """`slo_counts` per time step, oldest first; steps without requests are left out."""
    counted, bad, parameters = _counted(slo)
    step = int(step_ns)
    return [SloStep(**row) for row in store.rows(
        f"SELECT (start_ns // {step}) * {step} AS time_ns, count(*) AS total, "
        f"count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        f"WHERE {counted} AND start_ns >= ? AND start_ns < ? GROUP BY 1 ORDER BY 1",
        [*parameters, start_ns, end_ns])]
