"""The service map's SQL: calls between services, and to databases and caches."""

from __future__ import annotations

from typing import Any

from kansoku.explorer.common.spans import FAILED_REQUEST, SpanKind, failed_request
from kansoku.explorer.common.sql import attribute_path
from kansoku.explorer.map.models import Edge, EdgeKind, TraceSearch, system
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv


def dependencies(store: TelemetryStore, start_ns: int, end_ns: int) -> list[Edge]:
    """Calls between services (a span whose parent is another service's), with rate,
    errors and latency; plus each service's calls to databases and caches."""
    # What names the callee on the calls' spans, for the trace search that finds them:
    # the caller's client span says whom it called (peer.service); a message's consumer
    # span says the subject it came on. The commonest, when an edge has several.
    between = store.rows(
        "SELECT p.service AS parent, c.service AS child, count(*) AS calls, "
        f"count(*) FILTER (WHERE {failed_request('c')}) AS errors, "
        "avg(c.duration_ns) / 1e6 AS mean_ms, bool_or(c.kind = ?) AS messaging, "
        "mode(p.peer_service) AS peer_service, "
        "mode(c.messaging_destination) FILTER (WHERE c.kind = ?) AS destination, "
        "mode(json_extract_string(c.attributes, ?)) FILTER (WHERE c.kind = ?) AS via "
        "FROM spans c JOIN spans p ON c.trace_id = p.trace_id "
        "AND c.parent_span_id = p.span_id "
        "WHERE c.service <> p.service AND c.start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [SpanKind.CONSUMER, SpanKind.CONSUMER, attribute_path(semconv.MESSAGING_SYSTEM),
         SpanKind.CONSUMER, start_ns, end_ns])
    stores = store.rows(
        "SELECT service AS parent, db_system AS child, count(*) AS calls, "
        f"count(*) FILTER (WHERE {FAILED_REQUEST}) AS errors, "
        "avg(duration_ns) / 1e6 AS mean_ms FROM spans "
        "WHERE db_system IS NOT NULL AND start_ns BETWEEN ? AND ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns])
    return [*map(_service_call, between),
            *(Edge(kind=EdgeKind.DATABASE, **row,
                   traces=TraceSearch(service=row["parent"],
                                      tag=f"{semconv.DB_SYSTEM}={row['child']}"))
              for row in stores)]


def _service_call(row: dict[str, Any]) -> Edge:
    """An edge between two services, from its row."""
    if row["messaging"]:
        kind = EdgeKind.MESSAGING
        tag = (f"{semconv.MESSAGING_DESTINATION}={row['destination']}"
               if row["destination"] else None)
    else:
        kind = EdgeKind.HTTP
        tag = f"{semconv.PEER_SERVICE}={row['peer_service']}" if row["peer_service"] else None
    return Edge(parent=row["parent"], child=row["child"], kind=kind, calls=row["calls"],
                errors=row["errors"], mean_ms=row["mean_ms"],
                via=system(row["via"]).name if row["via"] else None,
                traces=TraceSearch(service=row["parent"], tag=tag))
