"""The service map's SQL: calls between services, and to databases and caches."""

from __future__ import annotations

from kansoku.explorer.common.spans import FAILED_REQUEST, SpanKind, failed_request
from kansoku.explorer.map.models import Edge, EdgeKind
from kansoku.explorer.store import TelemetryStore


def dependencies(store: TelemetryStore, start_ns: int, end_ns: int) -> list[Edge]:
    """Calls between services (a span whose parent is another service's), with rate,
    errors and latency; plus each service's calls to databases and caches."""
    between = store.rows(
        "SELECT p.service AS parent, c.service AS child, count(*) AS calls, "
        f"count(*) FILTER (WHERE {failed_request('c')}) AS errors, "
        "avg(c.duration_ns) / 1e6 AS mean_ms, bool_or(c.kind = ?) AS messaging "
        "FROM spans c JOIN spans p ON c.trace_id = p.trace_id "
        "AND c.parent_span_id = p.span_id "
        "WHERE c.service <> p.service AND c.start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [SpanKind.CONSUMER, start_ns, end_ns])
    stores = store.rows(
        "SELECT service AS parent, db_system AS child, count(*) AS calls, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "avg(duration_ns) / 1e6 AS mean_ms FROM spans "
        "WHERE db_system IS NOT NULL AND start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns])
    return [
        *(Edge(parent=row["parent"], child=row["child"], calls=row["calls"],
               errors=row["errors"], mean_ms=row["mean_ms"],
               kind=EdgeKind.MESSAGING if row["messaging"] else EdgeKind.HTTP)
          for row in between),
        *(Edge(kind=EdgeKind.DATABASE, **row) for row in stores)]
