"""The SLOs' SQL: a journey's requests and bad requests, in all and per step."""

from __future__ import annotations

from kansoku.explorer.common.spans import FAILED_REQUEST
from kansoku.explorer.slos.models import SloStep
from kansoku.explorer.store import TelemetryStore


def slo_counts(store: TelemetryStore, *, service: str, operations: list[str],
               threshold_ns: int | None, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(requests, bad requests) of a journey in [start, end): bad = failed, or (with
    `threshold_ns`) slower than it."""
    bad = f"duration_ns > {int(threshold_ns)}" if threshold_ns else FAILED_REQUEST
    rows = store.rows(
        f"SELECT count(*) AS total, count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        "WHERE kind = 'server' AND service = ? AND name = ANY(?::VARCHAR[]) "
        "AND start_ns >= ? AND start_ns < ?", [service, list(operations), start_ns, end_ns])
    return int(rows[0]["total"]), int(rows[0]["bad"])


def slo_steps(store: TelemetryStore, *, service: str, operations: list[str],
              threshold_ns: int | None, start_ns: int, end_ns: int, step_ns: int
              ) -> list[SloStep]:
    """`slo_counts` per time step, oldest first; steps without requests are left out."""
    bad = f"duration_ns > {int(threshold_ns)}" if threshold_ns else FAILED_REQUEST
    step = int(step_ns)
    return [SloStep(**row) for row in store.rows(
        f"SELECT (start_ns // {step}) * {step} AS time_ns, count(*) AS total, "
        f"count(*) FILTER (WHERE {bad}) AS bad FROM spans "
        "WHERE kind = 'server' AND service = ? AND name = ANY(?::VARCHAR[]) "
        "AND start_ns >= ? AND start_ns < ? GROUP BY 1 ORDER BY 1",
        [service, list(operations), start_ns, end_ns])]
