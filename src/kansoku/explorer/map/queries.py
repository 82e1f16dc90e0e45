"""The service map's SQL: calls between services, and to databases and caches."""

from __future__ import annotations

from typing import Any

from kansoku.explorer.common.spans import FAILED_REQUEST, SpanKind
from kansoku.explorer.common.sql import attribute_path
from kansoku.explorer.map.models import Edge, EdgeKind, TraceSearch, system
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv

#: How long before a call's request span its caller's span may have started: a message
#: waits in its stream (a dead letter replayed) — an hour covers what a map shows.
CALLER_SLACK_NS = 3600 * 10**9


def dependencies(store: TelemetryStore, start_ns: int, end_ns: int) -> list[Edge]:
    """Calls between services (a span whose parent is another service's), with rate,
    errors and latency; plus each service's calls to databases and caches."""
    # What names the callee on the calls' spans, for the trace search that finds them:
    # the caller's client span says whom it called (peer.service); a message's consumer
    # span says the subject it came on. The commonest, when an edge has several.
    # A call between services is a request span (server or consumer) whose parent is
    # another service's span (its client or producer span, as OpenTelemetry makes them,
    # but not always: a caller with no client instrumentation passes on its own span).
    # The callees are narrowed to request spans and both sides to the window before the
    # join (the caller up to CALLER_SLACK_NS earlier): the self-join of every span was
    # most of the map's time.
    between = store.rows(
        "WITH callee AS (SELECT trace_id, parent_span_id, service, kind, duration_ns, "
        f"{FAILED_REQUEST} AS failed, messaging_destination, "
        "CASE WHEN kind = ? THEN json_extract_string(attributes, ?) END AS via "
        "FROM spans WHERE start_ns BETWEEN ? AND ? AND parent_span_id IS NOT NULL "
        "AND kind IN (?, ?)), "
        "caller AS (SELECT trace_id, span_id, service, peer_service FROM spans "
        "WHERE start_ns BETWEEN ? AND ?) "
        "SELECT p.service AS parent, c.service AS child, count(*) AS calls, "
        "count(*) FILTER (WHERE c.failed) AS errors, "
        "avg(c.duration_ns) / 1e6 AS mean_ms, bool_or(c.kind = ?) AS messaging, "
        "mode(p.peer_service) AS peer_service, "
        "mode(c.messaging_destination) FILTER (WHERE c.kind = ?) AS destination, "
        "mode(c.via) AS via "
        "FROM callee c JOIN caller p ON c.parent_span_id = p.span_id "
        "AND c.trace_id = p.trace_id "
        "WHERE c.service <> p.service GROUP BY 1, 2 ORDER BY 1, 2",
        [SpanKind.CONSUMER, attribute_path(semconv.MESSAGING_SYSTEM), start_ns, end_ns,
         SpanKind.SERVER, SpanKind.CONSUMER, start_ns - CALLER_SLACK_NS, end_ns,
         SpanKind.CONSUMER, SpanKind.CONSUMER])
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
